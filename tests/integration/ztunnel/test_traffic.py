"""Traffic through one ztunnel on loopback: outbound HBONE, inbound, plaintext, passthrough."""

from __future__ import annotations

import asyncio

from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, App, Mesh, running_app


async def test_service_traffic_goes_over_hbone_and_keeps_the_client_address(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as server_app:
        await _service_traffic(mesh, server_app)


async def _service_traffic(mesh: Mesh, server_app: App) -> None:
    await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
    await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
    vip = await mesh.service("server", {"app": "server"}, 80, server_app.port)
    await mesh.until(
        lambda d: any(s["name"] == "server" for s in d["services"]) and len(d["pods"]) == 2,
        "service and pods known",
    )
    reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
    async with asyncio.timeout(WAIT):
        assert await reader.readline() == b"hello 127.0.0.11\n"
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
    writer.close()
    text = await mesh.metrics()
    assert 'reporter="destination"' in text
    assert 'connection_security_policy="mutual_tls"' in text
    assert 'source_principal="spiffe://cluster.local/ns/shop/sa/sleep"' in text
