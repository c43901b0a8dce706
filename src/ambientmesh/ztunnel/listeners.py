"""Accepting connections on a pod's listening sockets, and letting go of them gracefully.

A restarted ztunnel binds the same in-pod ports beside the old one (SO_REUSEPORT). When the old
one stops accepting it first takes every connection already waiting in its accept queue and
serves it, then closes: connections queued on a closed listener would be reset by the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from ambientmesh.clock import Clock
from ambientmesh.io.sockets import set_reset_on_close

log = logging.getLogger(__name__)

Handler = Callable[[socket.socket], Coroutine[Any, Any, None]]
_ACCEPT_ERROR_PAUSE = 0.1  # EMFILE and friends: give open connections a chance to finish


async def accept_forever(
    listener: socket.socket, handle: Handler, group: asyncio.TaskGroup, clock: Clock
) -> None:
    """Accept on ``listener`` and serve each connection in a task of ``group``, until cancelled."""
    loop = asyncio.get_running_loop()
    listener.setblocking(False)
    while True:
        try:
            conn, _ = await loop.sock_accept(listener)
        except OSError as error:
            log.warning("accept on %s failed: %s", _where(listener), error)
            await clock.sleep(_ACCEPT_ERROR_PAUSE)
            continue
        group.create_task(handle(conn))


def take_backlog(listener: socket.socket, handle: Handler, group: asyncio.TaskGroup) -> int:
    """Accept whatever is queued on ``listener`` without waiting, serve it, then close it."""
    taken = 0
    listener.setblocking(False)
    with contextlib.suppress(OSError):  # EAGAIN: the queue is empty; anything else: stop
        while True:
            conn, _ = listener.accept()
            conn.setblocking(False)
            group.create_task(handle(conn))
            taken += 1
    listener.close()
    return taken


def reset(sock: socket.socket) -> None:
    """Close with RST: how ztunnel tells a client its connection could not be proxied."""
    with contextlib.suppress(OSError):
        set_reset_on_close(sock)
    sock.close()


def _where(sock: socket.socket) -> str:
    try:
        return str(sock.getsockname()[:2])
    except OSError:
        return "a closed socket"
