"""A tunnel terminated in a protocol of our own (waypoints), and bad HTTP/2 over real TLS."""

from __future__ import annotations

import asyncio
import os
import random

from hyperframe.frame import GoAwayFrame

from ambientmesh.hbone import Terminate
from ambientmesh.identity.tls import client_context
from ambientmesh.protocol import ErrorCode
from ambientmesh.protocol.frames import PREFACE, settings_frame
from tests.integration.hbone.conftest import Mesh
from tests.integration.hbone.helpers import open_tunnel
from tests.integration.hbone.test_tls_and_pool import still_serving
from tests.unit.protocol.peers import frames_of
from tests.unit.protocol.test_fuzz import CONNECTION_CODES


class Upper(asyncio.Protocol):
    """A tiny server protocol running over the tunnel stream: answers in upper case."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())  # type: ignore[attr-defined]

    def eof_received(self) -> bool:
        self.transport.close()
        return True


async def test_terminated_tunnel_runs_a_protocol_over_the_stream(mesh: Mesh) -> None:
    mesh.decide = lambda request: Terminate(protocol_factory=Upper)
    async with asyncio.TaskGroup() as group:
        reader, writer, task = await open_tunnel(mesh, group)
        writer.write(b"hello waypoint")
        writer.write_eof()
        assert await reader.read(-1) == b"HELLO WAYPOINT"
        writer.close()
        await task


async def send_raw(mesh: Mesh, data: bytes) -> bytes:
    context = client_context(mesh.target.credential, mesh.pki.roots_pem)
    reader, writer = await asyncio.open_connection(*mesh.address, ssl=context, server_hostname="")
    try:
        writer.write(data)
        out = bytearray()
        async with asyncio.timeout(5):
            while chunk := await reader.read(65536):
                out += chunk
        return bytes(out)
    except ConnectionError:
        return b""
    finally:
        writer.close()


async def test_garbage_over_tls_closes_with_goaway_and_leaks_nothing(mesh: Mesh) -> None:
    await still_serving(mesh)
    fds, tasks = len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks())
    rng = random.Random(1234)
    valid = PREFACE + settings_frame([])
    for _ in range(20):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        # A frame header with a random type and a huge length, or plain noise.
        answer = await send_raw(mesh, valid + junk + b"\x00" * 9 * 1000)
        goaways = [f for f in frames_of(answer) if isinstance(f, GoAwayFrame)]
        assert all(f.error_code in CONNECTION_CODES for f in goaways)
    answer = await send_raw(mesh, valid + b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"x" * 8)
    # PING on stream 1: GOAWAY with PROTOCOL_ERROR. (The standard loop's TLS transport may
    # reset the socket before the client reads it, as it closes with unread input.)
    if answer or type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
        last = frames_of(answer)[-1]
        assert isinstance(last, GoAwayFrame)
        assert last.error_code == ErrorCode.PROTOCOL_ERROR
    await still_serving(mesh)
    await asyncio.sleep(0.05)
    assert len(os.listdir("/proc/self/fd")) == fds
    assert len(asyncio.all_tasks()) == tasks
