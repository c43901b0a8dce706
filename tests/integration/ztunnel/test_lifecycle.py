"""The ztunnel's life on loopback: readiness, admin, certificates, static stability, drain."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, Mesh, closed_by_peer, running_app


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    async with asyncio.timeout(WAIT):
        writer.write(data)
        assert await reader.readexactly(len(data)) == data


async def _connect(mesh: Mesh, vip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
    async with asyncio.timeout(WAIT):
        assert await reader.readline() == b"hello 127.0.0.11\n"
    return reader, writer


async def _client_and_server(mesh: Mesh, port: int) -> str:
    await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
    await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
    vip = await mesh.service("server", {"app": "server"}, 80, port)
    await mesh.until(lambda d: len(d["services"]) == 1 and len(d["pods"]) == 2, "known")
    return vip


async def test_ready_and_admin_endpoints(mesh: Mesh) -> None:
    async with asyncio.timeout(WAIT):
        while (answer := await mesh.ready())[0] != 200:
            # Until then the answer names what is missing.
            assert answer[0] == 503
            assert answer[1].startswith("not ready: waiting for ")
            await asyncio.sleep(0.02)  # the first discovery response is on its way
    assert answer == (200, "ready\n")
    await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
    dump = await mesh.until(
        lambda d: any(c["state"] == "Available" for c in d["certificates"]), "prefetched"
    )
    # The certificate was fetched when the pod arrived, before any traffic needed it.
    assert [c["identity"] for c in dump["certificates"]] == [
        "spiffe://cluster.local/ns/shop/sa/sleep"
    ]
    assert [p["name"] for p in dump["pods"]] == ["client"]
    assert dump["discovery"]["connected"]
    assert dump["zds"]["ready"]
    host, port = mesh.endpoints.admin
    async with mesh.http.post(f"http://{host}:{port}/logging?level=access:off") as response:
        assert response.status == 200
    assert (await mesh.admin("/logging"))["access"] == "off"
    async with mesh.http.post(f"http://{host}:{port}/logging?level=loud") as response:
        assert response.status == 400
        assert "unknown log level 'loud'" in await response.text()
    async with mesh.http.post(f"http://{host}:{port}/logging?level=access:info") as response:
        assert response.status == 200


async def test_quitquitquit_drains_and_stops(mesh: Mesh) -> None:
    host, port = mesh.endpoints.admin
    async with mesh.http.post(f"http://{host}:{port}/quitquitquit") as response:
        assert response.status == 200
    async with asyncio.timeout(WAIT):
        await mesh.ztunnel


async def test_existing_and_new_connections_work_without_the_control_plane(mesh: Mesh) -> None:
    """Static stability: the last configuration and certificates keep serving."""
    async with running_app("127.0.0.12") as app:
        vip = await _client_and_server(mesh, app.port)
        reader, writer = await _connect(mesh, vip)
        await mesh.stop_control_plane()
        await _echo(reader, writer, b"still here")
        fresh_reader, fresh_writer = await _connect(mesh, vip)
        await _echo(fresh_reader, fresh_writer, b"new one")
        writer.close()
        fresh_writer.close()
        dump = await mesh.admin()
        assert not dump["discovery"]["connected"]
        assert len(dump["services"]) == 1


async def test_stop_drains_live_connections_then_cuts_them(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        vip = await _client_and_server(mesh, app.port)
        reader, writer = await _connect(mesh, vip)
        mesh.stop.set()
        await asyncio.sleep(0.3)  # well inside the 2 s drain deadline
        await _echo(reader, writer, b"draining")  # live connections keep working
        for pod_ip, port in (("127.0.0.11", 15001), ("127.0.0.12", 15008)):
            sock = socket.socket()
            with sock:
                sock.setblocking(False)
                error = await _connect_error(sock, mesh.net.listening(pod_ip, port))
            assert error == errno.ECONNREFUSED, port  # but nothing new is accepted
        async with asyncio.timeout(WAIT):
            await mesh.ztunnel  # gone once the deadline passed
        await closed_by_peer(reader)
        writer.close()


async def _connect_error(sock: socket.socket, address: tuple[str, int]) -> int:
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except OSError as error:
        return error.errno or 0
    return 0


async def test_pod_removal_stops_its_listeners_and_connections(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        vip = await _client_and_server(mesh, app.port)
        reader, writer = await _connect(mesh, vip)
        await mesh.remove_pod("client")
        await closed_by_peer(reader)
        writer.close()
        dump = await mesh.admin()
        assert [p["name"] for p in dump["pods"]] == ["server"]


async def test_server_pod_removal_cuts_the_tls_connections_of_its_hbone_server(
    mesh: Mesh,
) -> None:
    """The pod's HBONE server is cancelled with the pod and cuts the connections it accepted,
    so the client's pool cannot hand a new stream to a server that no longer runs."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    async with running_app("127.0.0.12") as app:
        vip = await _client_and_server(mesh, app.port)
        reader, writer = await _connect(mesh, vip)
        hbone = mesh.net.listening("127.0.0.12", 15008)
        assert _established_to(hbone)
        await mesh.remove_pod("server")
        await closed_by_peer(reader)
        writer.close()
        async with asyncio.timeout(WAIT):
            while True:
                if not _established_to(hbone):
                    break
                await asyncio.sleep(0.02)  # the kernel's view of sockets: nothing to wait on
        # A new connection to the service now fails cleanly: nothing serves that pod's 15008.
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
        await closed_by_peer(reader)
        writer.close()
    assert errors == []


def _established_to(address: tuple[str, int]) -> bool:
    """Whether any TCP connection to ``address`` (IPv4) is established, per /proc/net/tcp."""
    ip = socket.inet_aton(address[0])[::-1].hex().upper()  # stored as a little-endian word
    remote = f"{ip}:{address[1]:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return any(row[2] == remote and row[3] == "01" for row in rows)  # 01: ESTABLISHED
