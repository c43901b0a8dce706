"""``ambientmesh ztunnel --node NAME``: the node's transparent L4 proxy (run once per node, in the
node's network namespace).

Every flag has an environment fallback (Istio's names where ztunnel has one); flags win.
Defaults follow the local runtime's layout under ``/run/ambientmesh/<cluster>``
(``AMBIENTMESH_RUN_ROOT`` moves it): the control plane's ``xds.sock``, the node agent's
``nodes/<node>/zds.sock`` and the node credential in ``nodes/<node>/credential``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambientmesh.cli.output import CommandFailed

if TYPE_CHECKING:
    from ambientmesh.ztunnel.config import ZtunnelConfig

# flag destination -> environment variable consulted when the flag is absent
ENVIRONMENT = {
    "cluster": "AMBIENTMESH_CLUSTER",
    "control_plane": "CONTROL_PLANE_ADDRESS",
    "xds_address": "XDS_ADDRESS",
    "ca_address": "CA_ADDRESS",
    "credential_dir": "NODE_CREDENTIAL_DIR",
    "zds_socket": "INPOD_UDS",
    "trust_domain": "TRUST_DOMAIN",
    "cluster_domain": "CLUSTER_DOMAIN",
    "cluster_id": "CLUSTER_ID",
    "network": "NETWORK",
    "secret_ttl": "SECRET_TTL",
    "drain_seconds": "CONNECTION_TERMINATION_DEADLINE",
    "log_format": "LOG_FORMAT",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "ztunnel",
        help="run the node's L4 proxy (ztunnel) for the enrolled pods of one node",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--node", required=True, help="the node this ztunnel serves")
    parser.add_argument("--cluster", help="local cluster name (env AMBIENTMESH_CLUSTER; default)")
    parser.add_argument(
        "--control-plane", help="discovery and certificates: unix:/path or host:port"
    )
    parser.add_argument("--xds-address", help="discovery, if elsewhere (XDS_ADDRESS)")
    parser.add_argument("--ca-address", help="certificates, if elsewhere (CA_ADDRESS)")
    parser.add_argument("--credential-dir", type=Path, help="node credential directory")
    parser.add_argument("--zds-socket", type=Path, help="the node agent's ZDS socket (INPOD_UDS)")
    parser.add_argument("--trust-domain", help="SPIFFE trust domain (default cluster.local)")
    parser.add_argument("--cluster-domain", help="DNS suffix (default cluster.local)")
    parser.add_argument("--cluster-id", help="cluster id for telemetry (default Kubernetes)")
    parser.add_argument("--network", help="network of this node (default: the default network)")
    parser.add_argument("--secret-ttl", help="certificate lifetime to ask for, e.g. 24h, 5m")
    parser.add_argument("--admin-port", type=int, default=15000, help="127.0.0.1 admin port")
    parser.add_argument("--metrics-port", type=int, default=15020)
    parser.add_argument("--readiness-port", type=int, default=15021)
    parser.add_argument(
        "--drain-seconds", type=float, help="how long SIGTERM waits for connections (default 5)"
    )
    parser.add_argument("--log-format", choices=("text", "json"), help="default text")
    parser.add_argument("--log-level", default="info", help="debug, info, warn or error")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.errors import InvalidInput

    try:
        config = build_config(args, os.environ)
    except InvalidInput as error:
        raise CommandFailed([error.message], 2) from None
    return _serve(config, args.log_level)


def build_config(args: argparse.Namespace, env: Mapping[str, str]) -> ZtunnelConfig:
    """The frozen ``ZtunnelConfig`` from flags, then environment, then the runtime's layout."""
    from ambientmesh.runtime.paths import ClusterPaths
    from ambientmesh.ztunnel.config import LogFormat, ZtunnelConfig, parse_duration

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return value if value is not None else env.get(ENVIRONMENT[name]) or None

    paths = ClusterPaths.for_cluster(pick("cluster") or "default", env)
    control_plane = pick("control_plane") or f"unix:{paths.xds_socket}"
    xds = pick("xds_address") or control_plane
    extra: dict[str, Any] = {}
    if ttl := pick("secret_ttl"):
        extra["secret_ttl"] = parse_duration(ttl, what="--secret-ttl")
    if drain := pick("drain_seconds"):
        extra["drain_deadline"] = parse_duration(str(drain), what="--drain-seconds").total_seconds()
    return ZtunnelConfig(
        node=args.node,
        xds_address=xds,
        ca_address=pick("ca_address") or control_plane,
        credential_dir=Path(pick("credential_dir") or paths.credential_dir(args.node)),
        zds_socket=Path(pick("zds_socket") or paths.zds_socket(args.node)),
        trust_domain=pick("trust_domain") or "cluster.local",
        cluster_domain=pick("cluster_domain") or "cluster.local",
        cluster_id=pick("cluster_id") or "Kubernetes",
        network=pick("network") or "",
        admin_address=("127.0.0.1", args.admin_port),
        metrics_address=("0.0.0.0", args.metrics_port),
        readiness_address=("0.0.0.0", args.readiness_port),
        log_format=LogFormat(pick("log_format") or "text"),
        **extra,
    )


LOG_LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}


def _serve(config: ZtunnelConfig, log_level: str) -> int:
    import asyncio
    import random
    import signal

    import uvloop

    from ambientmesh.clock import SystemClock
    from ambientmesh.ztunnel.accesslog import configure_logging
    from ambientmesh.ztunnel.app import run_ztunnel

    level = LOG_LEVELS.get(log_level.lower())
    if level is None:
        raise CommandFailed([f"--log-level {log_level!r}: use debug, info, warn or error"], 2)
    configure_logging(config.log_format, level=level)

    raise_open_files_limit()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_ztunnel(config, clock=SystemClock(), rng=random.Random(), stop=stop)

    uvloop.run(main())
    return 0


def raise_open_files_limit() -> None:
    """A proxy holds two sockets per connection: lift the soft limit on open files to the hard
    one, as Istio's ztunnel does at start-up."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
