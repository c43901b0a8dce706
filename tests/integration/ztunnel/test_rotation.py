"""Certificate rotation never drops a connection (the CA's shortest lifetime is one minute, so
renewal at half-life takes about 30 s: this test is slow)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509

from ambientmesh.hbone import connect
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import client_context
from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, Mesh, loopback_mesh, running_app

pytestmark = pytest.mark.slow

SERVER = "spiffe://cluster.local/ns/shop/sa/server"


@pytest.fixture
async def short_lived() -> AsyncIterator[Mesh]:
    async with loopback_mesh(secret_ttl=timedelta(minutes=1)) as made:
        yield made


def _valid_from(dump: dict[str, Any]) -> str | None:
    found = [c["validFrom"] for c in dump["certificates"] if c["identity"] == SERVER]
    return found[0] if found else None


async def test_rotation_keeps_live_connections_and_serves_new_ones(short_lived: Mesh) -> None:
    mesh = short_lived
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("client", "127.0.0.11", service_account="client")
        await mesh.add_pod("server", "127.0.0.12", service_account="server")
        dump = await mesh.until(lambda d: _valid_from(d) is not None, "server certificate")
        first = _valid_from(dump)
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", app.port))
        async with asyncio.timeout(WAIT):
            assert await reader.readline() == b"hello 127.0.0.11\n"
        await mesh.until(lambda d: _valid_from(d) != first, "renewal at half-life (30 s)", 50)
        async with asyncio.timeout(WAIT):
            writer.write(b"after rotation")
            assert await reader.readexactly(14) == b"after rotation"
        writer.close()
        # New handshakes present the renewed certificate.
        renewed = _valid_from(await mesh.admin())
        client = mesh.ca.issue_workload_credential(
            Identity.parse("spiffe://cluster.local/ns/shop/sa/c")
        )
        connection = await connect(
            mesh.net.listening("127.0.0.12", 15008),
            context=client_context(client, mesh.ca.roots_pem),
            expected={Identity.parse(SERVER)},
        )
        try:
            der = connection.extra["ssl_object"].getpeercert(binary_form=True)
            leaf = x509.load_der_x509_certificate(der)
            assert leaf.not_valid_before_utc.isoformat() == renewed
        finally:
            connection.close()
