"""Handshake refusals, the client pool, keepalive and drain."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl

import pytest

from ambientmesh.errors import IdentityError, UpstreamTimeout
from ambientmesh.hbone import (
    HboneConfig,
    HbonePool,
    TunnelTarget,
    connect,
)
from ambientmesh.identity.tls import client_context
from ambientmesh.io import CloseReason
from ambientmesh.testing.clock import FakeClock
from ambientmesh.testing.pki import TestPKI
from tests.integration.hbone.conftest import Mesh
from tests.integration.hbone.helpers import open_tunnel


async def raw_tls(mesh: Mesh, context: ssl.SSLContext) -> bytes:
    """Connect with ``context``, send an HTTP/2 preface and return what the server answers."""
    reader, writer = await asyncio.open_connection(*mesh.address, ssl=context, server_hostname="")
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


def bare_client_context(mesh: Mesh) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=mesh.pki.roots_pem.decode())
    context.set_alpn_protocols(["h2"])
    return context


async def expect_refused(mesh: Mesh, context: ssl.SSLContext) -> None:
    before = mesh.server.handshake_failures
    # TLS 1.3: the refusal can arrive after our side of the handshake "completed"; either
    # way not one HTTP/2 byte comes back.
    try:
        answer = await raw_tls(mesh, context)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b""
    for _ in range(50):
        if mesh.server.handshake_failures > before:
            break
        await asyncio.sleep(0.01)
    assert mesh.server.handshake_failures == before + 1


async def still_serving(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"ok")
        assert await reader.readexactly(2) == b"ok"
        writer.close()
        await task


async def test_client_without_certificate_is_refused(mesh: Mesh) -> None:
    await expect_refused(mesh, bare_client_context(mesh))
    await still_serving(mesh)


async def test_client_from_another_ca_is_refused(mesh: Mesh) -> None:
    stranger = TestPKI()
    credential = stranger.issue("client-ns/client")
    context = client_context(credential, mesh.pki.roots_pem)
    await expect_refused(mesh, context)
    await still_serving(mesh)


async def test_client_from_another_trust_domain_is_refused(mesh: Mesh) -> None:
    # Same CA, foreign trust domain: Istio's TrustDomainVerifier refuses it.
    credential = mesh.pki.issue("spiffe://other.domain/ns/a/sa/b")
    await expect_refused(mesh, client_context(credential, mesh.pki.roots_pem))
    await still_serving(mesh)


async def test_server_with_unexpected_identity_is_refused(mesh: Mesh) -> None:
    wrong = mesh.pki.identity("server-ns/someone-else")
    target = TunnelTarget(
        destination=mesh.address,
        credential=mesh.target.credential,
        roots_pem=mesh.pki.roots_pem,
        expected=frozenset({wrong}),
    )
    with pytest.raises(IdentityError):
        await mesh.pool.open(target, f"{mesh.backend[0]}:{mesh.backend[1]}")


async def test_connect_timeout_names_the_hbone_port(mesh: Mesh) -> None:
    # A listener whose accept queue is full drops SYNs: the connect never completes.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(full.getsockname())
        fillers.append(filler)
    await asyncio.sleep(0.1)
    config = HboneConfig(connect_timeout=0.5)
    context = client_context(mesh.target.credential, mesh.pki.roots_pem)
    try:
        with pytest.raises(UpstreamTimeout, match="NetworkPolicy"):
            await connect(
                full.getsockname(), context=context, expected=mesh.target.expected, config=config
            )
    finally:
        for filler in fillers:
            filler.close()
        full.close()


async def test_150_streams_need_two_connections(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        tunnels = [await open_tunnel(mesh, group) for _ in range(150)]
        for reader, writer, _ in tunnels:
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
        streams = sorted(len(c.streams) for c in mesh.pool.connections())
        assert streams == [50, 100]
        for _, writer, _ in tunnels:
            writer.close()
    assert all(task.result().reason is CloseReason.COMPLETED for _, _, task in tunnels)


async def test_goaway_moves_new_streams_to_a_new_connection(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        reader, writer, _task = await open_tunnel(mesh, group)
        writer.write(b"a")
        await reader.readexactly(1)
        (first,) = mesh.pool.connections()
        (served,) = mesh.server.connections
        served.goaway()
        for _ in range(100):
            if first.core.goaway_received is not None:
                break
            await asyncio.sleep(0.01)
        assert not first.usable
        reader2, writer2, _task2 = await open_tunnel(mesh, group)
        writer2.write(b"b")
        assert await reader2.readexactly(1) == b"b"
        assert len(mesh.pool.connections()) == 2
        writer.write(b"c")  # the drained connection still carries its open stream
        assert await reader.readexactly(1) == b"c"
        writer.close()
        writer2.close()


async def test_idle_connections_are_released_after_five_minutes(mesh: Mesh) -> None:
    clock = FakeClock()
    async with HbonePool(clock=clock) as pool:
        mesh.pool = pool
        async with asyncio.TaskGroup() as group:
            reader, writer, task = await open_tunnel(mesh, group)
            writer.write(b"x")
            await reader.readexactly(1)
            writer.close()
            await task
        (connection,) = pool.connections()
        for _ in range(29):  # 290 s: still pooled
            clock.advance(10)
            await asyncio.sleep(0.01)
        assert not connection.is_closed
        for _ in range(2):  # 300 s idle: released at the next keepalive tick
            clock.advance(10)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(connection.wait_closed(), 5)
        assert pool.connections() == []


async def test_silent_connection_is_dropped_after_20s(mesh: Mesh) -> None:
    """ztunnel: PING every 10 s, a connection that says nothing for 20 s is dropped."""
    clock = FakeClock()
    async with HbonePool(clock=clock) as pool:
        mesh.pool = pool
        async with asyncio.TaskGroup() as group:
            reader, writer, task = await open_tunnel(mesh, group)
            writer.write(b"x")
            await reader.readexactly(1)
            (connection,) = pool.connections()
            clock.advance(10)  # a PING goes out, and is answered: still alive
            await asyncio.sleep(0.05)
            assert not connection.is_closed
            connection.last_received = clock.monotonic() - 15  # then the peer falls silent
            clock.advance(10)
            await asyncio.wait_for(connection.wait_closed(), 5)
            result = await task
            writer.close()
    assert result.reason is CloseReason.UPSTREAM_RESET


async def test_drain_lets_open_streams_finish(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"before")
        await reader.readexactly(6)
        drain = group.create_task(mesh.server.drain(grace=5))
        await asyncio.sleep(0.05)
        writer.write(b"during")  # the stream keeps working while the server drains
        assert await reader.readexactly(6) == b"during"
        writer.write_eof()
        await reader.read(-1)
        writer.close()
        await drain
        assert (await task).reason is CloseReason.COMPLETED
        assert not mesh.server.connections


async def test_drain_deadline_cuts_long_streams(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"x")
        await reader.readexactly(1)
        await mesh.server.drain(grace=0.2)
        result = await task
        writer.close()
    assert result.reason is CloseReason.UPSTREAM_RESET


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_tls_failures_leak_no_fd_or_task(mesh: Mesh) -> None:
    await still_serving(mesh)
    fds, tasks = open_fds(), len(asyncio.all_tasks())
    for _ in range(5):
        await expect_refused(mesh, bare_client_context(mesh))
    await asyncio.sleep(0.05)
    assert open_fds() == fds
    assert len(asyncio.all_tasks()) == tasks
