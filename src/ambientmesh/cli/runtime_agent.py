"""``python -m ambientmesh.cli.runtime_agent``: the daemon behind ``ambientmesh up``.

`up` starts it as ``python -m ambientmesh.cli.runtime_agent --cluster NAME ...`` in its own
session with its output in ``<run>/logs/supervisor.log``; SIGTERM (what `down` sends) stops
the cluster gracefully. It is not an `ambientmesh` subcommand: nobody should run it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ambientmesh.cli.output import CommandFailed, print_error
from ambientmesh.errors import MeshError

if TYPE_CHECKING:
    from ambientmesh.runtime.supervisor import SupervisorConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--pod-cidr", default="10.244.0.0/16")
    parser.add_argument("--service-cidr", default="10.96.0.0/16")
    parser.add_argument("--domain", default="cluster.local")
    parser.add_argument("--restart-backoff", type=float, default=10.0)
    parser.add_argument("--shutdown-grace", type=float, default=5.0)
    parser.add_argument("--mesh", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--ztunnel-command", help="program (and arguments) to run as ztunnel")


def run(args: argparse.Namespace) -> int:
    from ambientmesh.clock import SystemClock
    from ambientmesh.runtime.supervisor import run_supervisor

    config = _config(args)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API request is noise

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_supervisor(config, clock=SystemClock(), stop=stop)

    import uvloop

    uvloop.run(main())
    return 0


def _config(args: argparse.Namespace) -> SupervisorConfig:
    from ambientmesh.backoff import Backoff
    from ambientmesh.runtime.ipam import Addressing
    from ambientmesh.runtime.mesh import MeshSettings
    from ambientmesh.runtime.paths import ClusterPaths
    from ambientmesh.runtime.supervisor import SupervisorConfig

    if args.restart_backoff < 0 or args.shutdown_grace < 0:
        raise CommandFailed(["--restart-backoff and --shutdown-grace must not be negative"], 2)
    service_cidr = Addressing.parse(service_cidr=args.service_cidr).service_cidr
    addressing = Addressing.parse(
        pod_cidr=args.pod_cidr,
        service_cidr=args.service_cidr,
        dns_ip=str(service_cidr.network_address + 10),  # what the API server keeps for DNS
    )
    mesh = None
    if args.mesh:
        mesh = MeshSettings(cluster_domain=args.domain)
        if args.ztunnel_command:
            command = tuple(shlex.split(args.ztunnel_command))
            mesh = MeshSettings(command=command, cluster_domain=args.domain)
    return SupervisorConfig(
        cluster=args.cluster,
        paths=ClusterPaths(cluster=args.cluster, run_dir=args.run_dir, state_dir=args.state_dir),
        nodes=args.nodes,
        addressing=addressing,
        domain=args.domain,
        mesh=mesh,
        backoff=Backoff(initial=args.restart_backoff, maximum=max(300.0, args.restart_backoff)),
        shutdown_grace=args.shutdown_grace,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ambientmesh.cli.runtime_agent")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CommandFailed as failure:
        for line in failure.lines:
            print_error(line)
        return failure.exit_code
    except MeshError as error:
        print_error(error.message)
        return 1
    except BaseExceptionGroup as group:
        known, unknown = group.split(MeshError)
        if unknown is not None or known is None:
            raise
        for leaf in _leaves(known):
            print_error(str(leaf))
        return 1


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


if __name__ == "__main__":
    sys.exit(main())
