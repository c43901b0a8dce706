"""Two workloads stay connected while their 60-second certificates rotate three times.

Real time is unavoidable here: OpenSSL checks validity against the wall clock. Everything
is real: the CA behind gRPC with mutual TLS on a unix socket, the CA client, the managers.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.ca_service import (
    CertificateService,
    add_certificate_service,
    server_credentials,
)
from ambientmesh.identity import tls
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.identity.ca_client import CaClient, open_channel
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.manager import CertificateManager
from ambientmesh.identity.spiffe import Identity

CLIENT = Identity.parse("spiffe://cluster.local/ns/shop/sa/frontend")
SERVER = Identity.parse("spiffe://cluster.local/ns/shop/sa/cart")
PODS = {"node-a": CLIENT, "node-b": SERVER}
LIFETIME = timedelta(seconds=60)
ROTATIONS = 3
STEP_TIMEOUT = 45.0  # a renewal is due every 30 s


async def scheduled(node: str, identity: Identity) -> bool:
    return PODS.get(node) == identity


@asynccontextmanager
async def control_plane() -> AsyncIterator[tuple[CertificateAuthority, str]]:
    directory = Path(tempfile.mkdtemp(prefix="am-rot-", dir="/tmp"))
    ca = CertificateAuthority.open_in_memory(settings=CaSettings(workload_ttl=LIFETIME))
    server = grpc.aio.server()
    add_certificate_service(server, CertificateService(ca, identity_scheduled=scheduled))
    target = f"unix:{directory / 'xds.sock'}"
    server.add_secure_port(target, server_credentials(ca))
    await server.start()
    try:
        yield ca, target
    finally:
        await server.stop(grace=None)
        shutil.rmtree(directory, ignore_errors=True)


@asynccontextmanager
async def node(
    ca: CertificateAuthority, target: str, name: str
) -> AsyncIterator[CertificateManager]:
    async with open_channel(target, ca.issue_node_credential(name), ca.roots_pem) as channel:
        client = CaClient(channel, roots_pem=ca.roots_pem, clock=SystemClock(), ttl=LIFETIME)
        async with CertificateManager(
            client, clock=SystemClock(), rng=random.Random(name)
        ) as manager:
            yield manager


def serial_of(ssl_object: ssl.SSLObject) -> int:
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_a_long_lived_connection_survives_three_rotations_of_60s_certificates() -> None:
    async with (
        control_plane() as (ca, target),
        node(ca, target, "node-a") as node_a,
        node(ca, target, "node-b") as node_b,
    ):
        rotations: asyncio.Queue[tuple[Identity, Credential]] = asyncio.Queue()
        for manager in (node_a, node_b):
            manager.subscribe(
                lambda identity, credential: rotations.put_nowait((identity, credential))
            )
        seen_by_server: list[tuple[Identity, int]] = []
        # The listener swaps its certificate whenever node B's manager rotates it.
        listening = tls.RotatingServerContext(await node_b.get(SERVER), ca.roots_pem)
        node_b.subscribe(lambda _, credential: listening.update(credential, ca.roots_pem))

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            ssl_object = writer.get_extra_info("ssl_object")
            peer = tls.verify_client_identity(ssl_object, ca.trust_domain)
            seen_by_server.append((peer, serial_of(ssl_object)))
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
            credential = await node_a.get(CLIENT, max_wait=10)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1",
                port,
                ssl=tls.client_context(credential, ca.roots_pem),
                server_hostname="",
            )
            ssl_object = writer.get_extra_info("ssl_object")
            assert tls.verify_server_identity(ssl_object, {SERVER}) == SERVER
            return reader, writer, serial_of(ssl_object)

        async def echo(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, text: str
        ) -> None:
            writer.write(f"{text}\n".encode())
            async with asyncio.timeout(5):
                assert await reader.readline() == f"{text}\n".encode()

        listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=listening.context)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            long_reader, long_writer, first_server_serial = await connect()
            await echo(long_reader, long_writer, "hello")
            counts = {CLIENT: 0, SERVER: 0}
            server_serials = {first_server_serial}
            while min(counts.values()) < ROTATIONS + 1:  # the first issuance, then 3 renewals
                async with asyncio.timeout(STEP_TIMEOUT):
                    identity, _ = await rotations.get()
                counts[identity] += 1
                # The long-lived connection keeps working, even past the expiry of the
                # certificates it was established with (TLS checks them at the handshake only).
                await echo(long_reader, long_writer, f"after rotation {counts}")
                # New connections present the new certificates on both sides.
                reader, writer, server_serial = await connect()
                await echo(reader, writer, "fresh")
                writer.close()
                server_serials.add(server_serial)
            assert counts[CLIENT] >= ROTATIONS + 1
            assert counts[SERVER] >= ROTATIONS + 1
            assert len(server_serials) >= ROTATIONS + 1
            assert len({serial for _, serial in seen_by_server}) >= ROTATIONS + 1
            assert {peer for peer, _ in seen_by_server} == {CLIENT}
            long_writer.close()
