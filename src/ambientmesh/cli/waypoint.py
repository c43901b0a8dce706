"""``ambientmesh waypoint --gateway <namespace>/<name>``: the minimal (L4) waypoint proxy.

Runs as the container of the Deployment the control plane renders for a waypoint Gateway.
The pod's environment says who it is (``POD_NAME``, ``POD_NAMESPACE``, ``NODE_NAME``,
``SERVICE_ACCOUNT``, set by the local runtime); flags override. It reaches the control plane
like its node's ztunnel does (``AMBIENTMESH_CLUSTER``/``AMBIENTMESH_RUN_ROOT`` locate
``xds.sock`` and the node credential) and presents its own identity, the Gateway's service
account, on HBONE port 15008; readiness is served on 15021.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambientmesh.cli.output import CommandFailed

if TYPE_CHECKING:
    from ambientmesh.waypoint.config import WaypointConfig

ENVIRONMENT = {
    "cluster": "AMBIENTMESH_CLUSTER",
    "pod_name": "POD_NAME",
    "pod_namespace": "POD_NAMESPACE",
    "node": "NODE_NAME",
    "service_account": "SERVICE_ACCOUNT",
    "control_plane": "CONTROL_PLANE_ADDRESS",
    "xds_address": "XDS_ADDRESS",
    "ca_address": "CA_ADDRESS",
    "credential_dir": "NODE_CREDENTIAL_DIR",
    "trust_domain": "TRUST_DOMAIN",
    "log_format": "LOG_FORMAT",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "waypoint",
        help="run a waypoint proxy for a Gateway of class istio-waypoint (L4 only for now)",
    )
    parser.add_argument("--gateway", required=True, help="<namespace>/<name> of the Gateway")
    parser.add_argument("--cluster", help="local cluster name (env AMBIENTMESH_CLUSTER; default)")
    parser.add_argument("--pod-name", help="this pod's name (env POD_NAME)")
    parser.add_argument("--pod-namespace", help="this pod's namespace (env POD_NAMESPACE)")
    parser.add_argument("--node", help="the node this pod runs on (env NODE_NAME)")
    parser.add_argument(
        "--service-account",
        help="this pod's service account (env SERVICE_ACCOUNT; default: the Gateway's name)",
    )
    parser.add_argument(
        "--control-plane", help="discovery and certificates: unix:/path or host:port"
    )
    parser.add_argument("--xds-address", help="discovery, if elsewhere (env XDS_ADDRESS)")
    parser.add_argument("--ca-address", help="certificates, if elsewhere (env CA_ADDRESS)")
    parser.add_argument("--credential-dir", type=Path, help="the node credential directory")
    parser.add_argument("--trust-domain", help="SPIFFE trust domain (default cluster.local)")
    parser.add_argument("--hbone-port", type=int, default=15008)
    parser.add_argument("--readiness-port", type=int, default=15021)
    parser.add_argument("--log-format", choices=("text", "json"), help="default text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.errors import InvalidInput

    try:
        config = build_config(args, os.environ)
    except InvalidInput as error:
        raise CommandFailed([error.message], 2) from None
    return _serve(config, args.log_format or os.environ.get("LOG_FORMAT") or "text")


def build_config(args: argparse.Namespace, env: Mapping[str, str]) -> WaypointConfig:
    from ambientmesh.errors import InvalidInput
    from ambientmesh.runtime.paths import ClusterPaths
    from ambientmesh.waypoint.config import WaypointConfig, parse_gateway

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return value if value is not None else env.get(ENVIRONMENT[name]) or None

    namespace, name = parse_gateway(args.gateway)
    missing = [
        f"--{n.replace('_', '-')} (env {ENVIRONMENT[n]})"
        for n in ("pod_name", "node")
        if not pick(n)
    ]
    if missing:
        raise InvalidInput(f"waypoint needs {' and '.join(missing)}")
    node = pick("node")
    paths = ClusterPaths.for_cluster(pick("cluster") or "default", env)
    control_plane = pick("control_plane") or f"unix:{paths.xds_socket}"
    xds = pick("xds_address") or control_plane
    return WaypointConfig(
        gateway_namespace=namespace,
        gateway_name=name,
        pod_name=pick("pod_name"),
        pod_namespace=pick("pod_namespace") or namespace,
        node=node,
        service_account=pick("service_account") or name,
        xds_address=xds,
        ca_address=pick("ca_address") or control_plane,
        credential_dir=Path(pick("credential_dir") or paths.credential_dir(node)),
        trust_domain=pick("trust_domain") or "cluster.local",
        hbone_address=("0.0.0.0", args.hbone_port),
        readiness_address=("0.0.0.0", args.readiness_port),
    )


def _serve(config: WaypointConfig, log_format: str) -> int:
    import asyncio
    import random
    import signal

    import uvloop

    from ambientmesh.cli.ztunnel import raise_open_files_limit
    from ambientmesh.clock import SystemClock
    from ambientmesh.waypoint.app import run_waypoint
    from ambientmesh.ztunnel.accesslog import configure_logging
    from ambientmesh.ztunnel.config import LogFormat

    configure_logging(LogFormat(log_format))

    raise_open_files_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_waypoint(config, clock=SystemClock(), rng=random.Random(), stop=stop)

    uvloop.run(main())
    return 0
