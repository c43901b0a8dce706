"""Benchmark proxies on ambientmesh.hbone: outbound (plain → HBONE), inbound (HBONE → plain),
or both in one process (one hop). Prints "ready" once listening; runs until killed."""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
from pathlib import Path

import uvloop

from ambientmesh.hbone import (
    Forward,
    HbonePool,
    HboneServer,
    InboundRequest,
    OutboundPlan,
    Reject,
    TunnelTarget,
    proxy_outbound,
    request_headers,
)
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.tls import server_context


def load(certs: Path, name: str) -> Credential:
    return Credential.from_pem(
        (certs / f"{name}.pem").read_bytes(), (certs / f"{name}.key").read_bytes()
    )


async def inbound(certs: Path, port: int, group: asyncio.TaskGroup) -> None:
    credential = load(certs, "server")
    roots = (certs / "roots.pem").read_bytes()
    loop = asyncio.get_running_loop()

    async def handler(request: InboundRequest) -> Forward | Reject:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(upstream, (request.authority.host, request.authority.port))
        except OSError:
            upstream.close()
            return Reject(status=503)
        return Forward(upstream=upstream)

    server = HboneServer(
        handler=handler,
        tls=server_context(credential, roots),
        trust_domain=credential.identity.trust_domain,
    )
    sock = socket.create_server(("127.0.0.1", port), backlog=4096)
    group.create_task(server.serve(sock))


async def outbound(certs: Path, routes: list[str], hbone: str, group: asyncio.TaskGroup) -> None:
    """One plain listener per route ``LISTEN_PORT=HOST:PORT``, all tunnelled to ``hbone``."""
    credential = load(certs, "client")
    server_identity = load(certs, "server").identity
    host, _, hbone_port = hbone.rpartition(":")
    target = TunnelTarget(
        destination=(host, int(hbone_port)),
        credential=credential,
        roots_pem=(certs / "roots.pem").read_bytes(),
        expected=frozenset({server_identity}),
    )
    for route in routes:
        port, _, authority = route.partition("=")
        listener = socket.create_server(("127.0.0.1", int(port)), backlog=4096)
        listener.setblocking(False)
        group.create_task(accept_loop(listener, target, authority))


async def accept_loop(listener: socket.socket, target: TunnelTarget, authority: str) -> None:
    loop = asyncio.get_running_loop()
    async with HbonePool() as pool, asyncio.TaskGroup() as group:
        while True:
            sock, peer = await loop.sock_accept(listener)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            plan = OutboundPlan(
                target=target,
                authority=authority,
                headers=request_headers(client=f"{peer[0]}:{peer[1]}"),
            )
            group.create_task(proxy_outbound(sock, plan, pool))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["outbound", "inbound", "both"])
    parser.add_argument("--certs", type=Path, required=True)
    parser.add_argument("--route", action="append", default=[], help="PORT=HOST:PORT (outbound)")
    parser.add_argument("--hbone-port", type=int, default=0, help="HBONE port (inbound)")
    parser.add_argument("--hbone", default="", help="HBONE peer host:port (outbound)")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    async with asyncio.TaskGroup() as group:
        if args.mode in ("inbound", "both"):
            await inbound(args.certs, args.hbone_port, group)
        if args.mode in ("outbound", "both"):
            await outbound(args.certs, args.route, args.hbone, group)
        print("ready", flush=True)


if __name__ == "__main__":
    uvloop.run(main())
