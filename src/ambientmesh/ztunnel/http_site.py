"""Serving a few aiohttp routes on one TCP address until cancelled (admin, metrics, readiness)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

from aiohttp import web

from ambientmesh.errors import ConnectFailed


def bind(address: tuple[str, int], *, reuse_port: bool = True) -> socket.socket:
    """A listening socket on ``address`` (port 0 picks one); ConnectFailed says which.

    SO_REUSEPORT lets a restarted proxy bind its status ports while the old one drains (in
    the local runtime both run in the node's namespace); until the old one exits, either may
    answer.
    """
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        raise ConnectFailed(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


async def serve_site(
    name: str,
    routes: Sequence[web.RouteDef],
    sock: socket.socket,
    *,
    started: Callable[[], None] | None = None,
) -> None:
    """Serve ``routes`` on the bound ``sock`` until cancelled."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        if started is not None:
            started()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
