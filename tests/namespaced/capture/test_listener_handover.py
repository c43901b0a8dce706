"""A restarted ztunnel's listeners inherit the old ones' unaccepted connections (no resets)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from ambientmesh.capture.apply import install_capture
from ambientmesh.capture.sockets import pod_listener
from ambientmesh.linux import sysctl
from tests.namespaced.capture.topology import TwoPods, app_connect, two_pods

pytestmark = pytest.mark.root

CONNECTIONS = 32


@pytest.fixture
async def pods() -> AsyncIterator[TwoPods]:
    async with two_pods() as created:
        await install_capture(created.client)
        yield created


async def _hand_over(pods: TwoPods) -> tuple[int, int]:
    """Connect while an old and a new 15001 listener share the port, close the old one without
    accepting, then count (accepted by the new one, reset)."""
    old = pod_listener(pods.client, 15001)
    new = pod_listener(pods.client, 15001)
    clients: list[socket.socket] = []
    accepted: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):  # redirected to 15001, spread over both listeners
            clients.append(await app_connect(pods.client, (pods.server_ip, 8080)))
        old.close()
        new.setblocking(False)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while len(accepted) < CONNECTIONS:
                    conn, _ = await loop.sock_accept(new)
                    accepted.append(conn)
        reset = 0
        for client in clients:
            try:
                client.send(b"x")
                await asyncio.sleep(0)
                client.send(b"x")
            except (ConnectionResetError, BrokenPipeError):
                reset += 1
        return len(accepted), reset
    finally:
        for sock in (*clients, *accepted, old, new):
            sock.close()


async def test_closing_the_old_listener_migrates_its_queue_to_the_new_one(
    pods: TwoPods,
) -> None:
    accepted, reset = await _hand_over(pods)
    assert (accepted, reset) == (CONNECTIONS, 0)


async def test_without_migration_the_old_queue_would_be_reset(pods: TwoPods) -> None:
    """Control: the test above fails without the sysctl that capture sets."""
    await sysctl.write({"net.ipv4.tcp_migrate_req": 0}, netns_name=pods.client)
    accepted, _ = await _hand_over(pods)
    assert accepted < CONNECTIONS
