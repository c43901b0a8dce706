"""Tunnels end to end over real mutual TLS: bytes, headers, half-close, resets, refusals."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ambientmesh.hbone import Reject
from ambientmesh.io import CloseReason
from tests.integration.hbone.conftest import Mesh
from tests.integration.hbone.helpers import open_tunnel


async def test_bytes_go_both_ways_and_are_counted(mesh: Mesh) -> None:
    payload = bytes(range(256)) * 40_000  # ~10 MB: many windows and frames
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(payload)
        writer.write_eof()
        echoed = await reader.read(-1)
        writer.close()
        result = await task
    assert echoed == payload
    assert (result.bytes_received, result.bytes_sent) == (len(payload), len(payload))
    assert result.reason is CloseReason.COMPLETED
    assert result.status == 200
    await asyncio.wait_for(mesh.results_changed.wait(), 5)
    assert mesh.results[0].bytes_received == len(payload)


async def test_handler_sees_identity_addresses_and_hbone_headers(mesh: Mesh) -> None:
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        await task
    (request,) = mesh.requests
    assert request.peer_identity.namespace == "client-ns"
    assert request.peer_address[0] == "127.0.0.1"
    assert request.local_address == mesh.address
    assert request.header("baggage") == "k8s.pod.name=client"
    assert request.header(
        "forwarded",
    ).startswith('for="127.0.0.1:')  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [401, 503])
async def test_non_200_fails_the_users_connection(mesh: Mesh, status: int) -> None:
    mesh.decide = lambda request: Reject(status=status)
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        result = await task
        # ztunnel's deny signature: the application sees its connection reset (or EOF).
        with pytest.raises(ConnectionResetError):
            await reader.read(-1)
        writer.close()
    assert result.reason is CloseReason.HTTP_STATUS
    assert result.status == status


async def test_half_close_each_way_maps_to_end_stream(mesh: Mesh) -> None:
    backend_side: list[socket.socket] = []

    def decide(request: object) -> None:
        return None

    mesh.decide = decide
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"request")
        writer.write_eof()  # our half-close travels as END_STREAM; the echo answers and closes
        assert await reader.read(-1) == b"request"
        writer.close()
        result = await task
    assert result.reason is CloseReason.COMPLETED
    assert not backend_side


async def test_upstream_reset_resets_the_users_socket(mesh: Mesh) -> None:
    resetter = socket.create_server(("127.0.0.1", 0))
    resetter.setblocking(False)

    async def accept_and_reset() -> None:
        conn, _ = await asyncio.get_running_loop().sock_accept(resetter)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    host, port = resetter.getsockname()
    async with asyncio.TaskGroup() as group:
        group.create_task(accept_and_reset())
        reader, writer, task = await open_tunnel(mesh, group, authority=f"{host}:{port}")
        with pytest.raises(ConnectionResetError):
            await reader.read(-1)
        writer.close()
        result = await task
    resetter.close()
    assert result.reason is CloseReason.UPSTREAM_RESET


async def test_user_reset_resets_the_upstream_socket(mesh: Mesh) -> None:
    upstream = socket.create_server(("127.0.0.1", 0))
    upstream.setblocking(False)
    loop = asyncio.get_running_loop()
    host, port = upstream.getsockname()
    async with asyncio.TaskGroup() as group:
        _reader, writer, task = await open_tunnel(mesh, group, authority=f"{host}:{port}")
        conn, _ = await loop.sock_accept(upstream)
        writer.write(b"x")
        assert await loop.sock_recv(conn, 1) == b"x"
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()
        with pytest.raises(ConnectionResetError):
            await drain_socket(conn)
        result = await task
    conn.close()
    upstream.close()
    assert result.reason is CloseReason.DOWNSTREAM_RESET


async def test_handler_failure_answers_503_and_the_server_keeps_serving(mesh: Mesh) -> None:
    def explode(request: object) -> None:
        raise RuntimeError("handler bug")

    mesh.decide = explode
    async with asyncio.TaskGroup() as group:
        _, writer, task = await open_tunnel(mesh, group)
        assert (await task).status == 503
        writer.close()
        mesh.decide = None
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"still here")
        assert await reader.readexactly(10) == b"still here"
        writer.close()
        await task


async def test_a_slow_reader_does_not_stall_other_streams(mesh: Mesh) -> None:
    stalled = socket.create_server(("127.0.0.1", 0))
    stalled.setblocking(False)
    host, port = stalled.getsockname()
    loop = asyncio.get_running_loop()
    async with asyncio.TaskGroup() as group:
        _slow_reader, slow_writer, slow_task = await open_tunnel(
            mesh, group, authority=f"{host}:{port}"
        )
        never_reads, _ = await loop.sock_accept(stalled)  # accepted, never read
        blob = b"s" * (1 << 20)
        for _ in range(12):  # more than a stream window plus socket buffers
            slow_writer.write(blob)
        await asyncio.sleep(0.2)
        assert len(mesh.pool.connections()) == 1
        reader, writer, task = await open_tunnel(mesh, group)
        payload = b"f" * (4 << 20)
        writer.write(payload)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(-1), 10) == payload
        writer.close()
        await task
        assert len(mesh.pool.connections()) == 1  # both streams shared one connection
        # The stalled reader finally goes away with a reset; it reaches our application.
        never_reads.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        never_reads.close()
        assert (await slow_task).reason is CloseReason.UPSTREAM_RESET
        slow_writer.close()
    stalled.close()


async def test_upstream_unreachable_is_a_503(mesh: Mesh) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    host, port = closed.getsockname()
    closed.close()
    async with asyncio.TaskGroup() as group:
        _, writer, task = await open_tunnel(mesh, group, authority=f"{host}:{port}")
        result = await task
        writer.close()
    assert result.status == 503
    assert result.reason is CloseReason.HTTP_STATUS


async def drain_socket(conn: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while await loop.sock_recv(conn, 1024):
        pass
