"""How an HBONE server stops: cancelled, told to stop accepting, drained."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

from ambientmesh.hbone import HboneServer, Reject
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.tls import server_context
from ambientmesh.io import CloseReason
from ambientmesh.testing.pki import TestPKI
from tests.integration.hbone.conftest import Mesh, dial, listener
from tests.integration.hbone.helpers import open_tunnel


def socket_inodes() -> set[str]:
    """The sockets this process holds open, by inode (fd numbers are reused, inodes are not)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between listing and reading
        if target.startswith("socket:"):
            inodes.add(target)
    return inodes


async def settle(condition: Callable[[], bool], turns: int = 1000) -> bool:
    """Let the event loop run its callbacks until ``condition`` holds (at most ``turns`` turns;
    no wall-clock waiting)."""
    for _ in range(turns):
        if condition():
            return True
        await asyncio.sleep(0)
    return condition()


def record_loop_errors() -> list[dict[str, Any]]:
    """What reaches the loop's exception handler from now on (errors raised in callbacks)."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


def server_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").startswith("HboneServer.")
    ]


async def backend_handlers_done() -> None:
    echoes = {t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "echo"}
    if echoes:
        await asyncio.wait_for(asyncio.wait(echoes), 5)


async def test_cancelled_server_aborts_live_connections_and_leaks_nothing(mesh: Mesh) -> None:
    """Cancelling ``serve`` cuts its TLS connections: the client sees its connection end at
    once (instead of a connection whose new streams would reach a finished TaskGroup), and no
    task, socket or loop error is left behind."""
    assert mesh.serving is not None
    errors = record_loop_errors()
    before = socket_inodes()
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        (client,) = mesh.pool.connections()
        mesh.serving.cancel()
        await asyncio.wait({mesh.serving})
        await asyncio.wait_for(client.wait_closed(), 5)
        assert (await task).reason is CloseReason.UPSTREAM_RESET
        writer.close()
    await backend_handlers_done()
    assert not mesh.server.connections
    assert server_tasks() == []
    assert await settle(lambda: socket_inodes() <= before), socket_inodes() - before
    assert errors == []


async def test_stop_accepting_refuses_new_clients_while_live_streams_flow_until_drain(
    mesh: Mesh,
) -> None:
    assert mesh.serving is not None
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"a")
        assert await reader.readexactly(1) == b"a"
        await mesh.server.stop_accepting()
        with pytest.raises(ConnectionRefusedError):
            (await dial(mesh.address)).close()
        writer.write(b"b")  # the live stream keeps flowing
        assert await reader.readexactly(1) == b"b"
        # A live connection even takes new streams: only drain sends GOAWAY.
        reader2, writer2, task2 = await open_tunnel(mesh, group)
        writer2.write(b"c")
        assert await reader2.readexactly(1) == b"c"
        writer2.close()
        assert (await task2).reason is CloseReason.COMPLETED
        (client,) = mesh.pool.connections()
        drain = group.create_task(mesh.server.drain(grace=5))
        assert await settle(lambda: client.core.goaway_received is not None)
        assert not client.usable  # GOAWAY: no new streams on it, the open one may finish
        writer.close()
        await drain
        assert (await task).reason is CloseReason.COMPLETED
    assert not mesh.server.connections
    await asyncio.wait_for(mesh.serving, 5)  # nothing left to serve: ``serve`` returns


async def test_serve_after_stop_accepting_closes_the_listener_at_once(
    pki: TestPKI, server_credential: Credential
) -> None:
    async def refuse(request: object) -> Reject:
        return Reject(status=503)

    server = HboneServer(
        handler=refuse,
        tls=server_context(server_credential, pki.roots_pem),
        trust_domain=pki.trust_domain,
    )
    await server.stop_accepting()
    sock = listener()
    await asyncio.wait_for(server.serve(sock), 5)
    assert sock.fileno() == -1
