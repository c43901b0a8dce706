"""``ambientmesh control-plane``: run the store, API server, CA, discovery and controllers."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
from pathlib import Path
from typing import Any

from ambientmesh.cli.output import CommandFailed

STATE_ROOT = Path("/var/lib/ambientmesh")
RUN_ROOT = Path("/run/ambientmesh")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "control-plane", help="run the control plane (API server, CA, discovery, controllers)"
    )
    parser.add_argument("--cluster", default="default", help="cluster name (default: default)")
    parser.add_argument("--state-dir", type=Path, help="default: /var/lib/ambientmesh/<cluster>")
    parser.add_argument("--run-dir", type=Path, help="default: /run/ambientmesh/<cluster>")
    parser.add_argument("--trust-domain", default="cluster.local")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--service-cidr", default="10.96.0.0/16")
    parser.add_argument(
        "--grpc-port", type=int, help="also serve CA and discovery on this TCP port (e.g. 15012)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.clock import SystemClock
    from ambientmesh.controlplane.app import ControlPlaneSettings, run_control_plane

    try:
        ipaddress.ip_network(args.service_cidr)
    except ValueError as error:
        raise CommandFailed([f"--service-cidr {args.service_cidr!r}: {error}"], 2) from None
    if args.grpc_port is not None and not 0 < args.grpc_port < 65536:
        raise CommandFailed([f"--grpc-port {args.grpc_port}: must be between 1 and 65535"], 2)
    settings = ControlPlaneSettings(
        state_dir=args.state_dir or STATE_ROOT / args.cluster,
        run_dir=args.run_dir or RUN_ROOT / args.cluster,
        trust_domain=args.trust_domain,
        cluster_domain=args.cluster_domain,
        service_cidr=args.service_cidr,
        grpc_port=args.grpc_port,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_control_plane(settings, clock=SystemClock(), stop=stop)

    asyncio.run(main())
    return 0
