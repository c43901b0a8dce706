"""Loopback TCP pairs and an outbound tunnel started the way ztunnel starts one."""

from __future__ import annotations

import asyncio
import socket

from ambientmesh.hbone import OutboundPlan, proxy_outbound, request_headers
from ambientmesh.io import RelayResult
from tests.integration.hbone.conftest import Mesh


async def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """(application side, accepted side) of a real loopback TCP connection."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, server.getsockname())
        accepted, _ = await loop.sock_accept(server)
    return client, accepted


async def open_tunnel(
    mesh: Mesh, group: asyncio.TaskGroup, authority: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Task[RelayResult]]:
    app, accepted = await tcp_pair()
    peer = app.getsockname()
    plan = OutboundPlan(
        target=mesh.target,
        authority=authority or f"{mesh.backend[0]}:{mesh.backend[1]}",
        headers=request_headers(client=f"{peer[0]}:{peer[1]}", baggage="k8s.pod.name=client"),
    )
    task = group.create_task(proxy_outbound(accepted, plan, mesh.pool))
    reader, writer = await asyncio.open_connection(sock=app)
    return reader, writer, task
