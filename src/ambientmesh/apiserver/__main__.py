"""``python -m ambientmesh.apiserver``: run the API server and its store standalone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ambientmesh.apiserver.listeners import TlsFiles
from ambientmesh.apiserver.standalone import ServerOptions, run_server
from ambientmesh.clock import SystemClock
from ambientmesh.errors import MeshError
from ambientmesh.store.store import StoreConfig


def parse_args(argv: Sequence[str] | None) -> ServerOptions:
    parser = argparse.ArgumentParser(
        prog="python -m ambientmesh.apiserver", description="Run the ambientmesh API server."
    )
    parser.add_argument("--state-dir", type=Path, required=True, help="where the store lives")
    parser.add_argument("--socket", type=Path, required=True, help="unix socket to listen on")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="also listen on TCP with mTLS")
    parser.add_argument("--tls-cert", type=Path, help="server certificate (PEM) for --tcp")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM) for --tcp")
    parser.add_argument("--client-ca", type=Path, help="CA bundle client certificates chain to")
    parser.add_argument("--ready-file", type=Path, help="written (JSON) once serving")
    parser.add_argument("--service-cidr", default="10.96.0.0/16")
    parser.add_argument("--event-retention", type=int, default=100_000)
    parser.add_argument("--bookmark-interval", type=float, default=10.0)
    args = parser.parse_args(argv)
    tcp = tls = None
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            parser.error(f"--tcp must be HOST:PORT, not {args.tcp!r}")
        if not (args.tls_cert and args.tls_key and args.client_ca):
            parser.error("--tcp needs --tls-cert, --tls-key and --client-ca (mTLS only)")
        tcp = (host.strip("[]"), int(port))
        tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, client_ca=args.client_ca)
    if args.event_retention < 1:
        parser.error("--event-retention must be at least 1")
    return ServerOptions(
        state_dir=args.state_dir,
        socket=args.socket,
        tcp=tcp,
        tls=tls,
        ready_file=args.ready_file,
        store=StoreConfig(service_cidr=args.service_cidr, event_retention=args.event_retention),
        bookmark_interval=args.bookmark_interval,
    )


async def _main(options: ServerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def ready(addresses: list[str]) -> None:
        print(f"ambientmesh-apiserver ready {' '.join(addresses)}", flush=True)

    await run_server(options, clock=SystemClock(), stop=stop, on_ready=ready)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        import uvloop

        uvloop.run(_main(options))
    except MeshError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
