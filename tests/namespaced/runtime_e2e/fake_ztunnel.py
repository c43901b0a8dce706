"""A stand-in for `ambientmesh ztunnel` in runtime tests: speaks ZDS and reports readiness.

It accepts every pod the node agent sends (without proxying anything), appends one line per
add and delete to the file given with `--record`, and answers 200 on
127.0.0.1:15021/healthz/ready once its first ZDS snapshot is complete. Run as a script.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

from aiohttp import web

from ambientmesh.capture.zds_client import PodWorkload, ZdsClient
from ambientmesh.clock import SystemClock


class Recorder:
    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node

    def _write(self, line: str) -> None:
        with self.path.open("a") as file:
            file.write(f"{self.node} {line}\n")

    async def start_workload(self, workload: PodWorkload) -> None:
        self._write(f"add {workload.info.namespace}/{workload.info.name} {workload.uid}")

    async def stop_workload(self, uid: str) -> None:
        self._write(f"del {uid}")


async def main(args: argparse.Namespace) -> None:
    client = ZdsClient(
        args.zds_socket, Recorder(args.record, args.node), clock=SystemClock(), rng=random.Random()
    )

    async def ready(request: web.Request) -> web.Response:
        return web.Response(status=200 if client.ready else 503, text="ready\n")

    app = web.Application()
    app.router.add_get("/healthz/ready", ready)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 15021).start()
    try:
        await client.run()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--zds-socket", required=True)
    known, _ = parser.parse_known_args()
    asyncio.run(main(known))
