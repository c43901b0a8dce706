"""Fixtures for HBONE over real mutual TLS on loopback: a PKI, an HBONE server in front of an
echo backend, and an outbound client pool (on uvloop, the event loop the proxies run)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import uvloop

from ambientmesh.hbone import (
    Decision,
    Forward,
    HboneConfig,
    HbonePool,
    HboneServer,
    InboundRequest,
    Reject,
    TunnelTarget,
)
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.tls import server_context
from ambientmesh.io import RelayResult
from ambientmesh.testing.pki import TestPKI


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every test runs on uvloop (what the proxies run) and on the standard loop."""
    return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="session")
def server_credential(pki: TestPKI) -> Credential:
    return pki.issue("server-ns/server")


@pytest.fixture(scope="session")
def client_credential(pki: TestPKI) -> Credential:
    return pki.issue("client-ns/client")


def listener() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def dial(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, address)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Mesh:
    """An HBONE server (inbound) that forwards each CONNECT to its authority, and a pool."""

    pki: TestPKI
    server: HboneServer
    address: tuple[str, int]
    backend: tuple[str, int]
    pool: HbonePool
    target: TunnelTarget
    requests: list[InboundRequest] = field(default_factory=list)
    results: list[RelayResult] = field(default_factory=list)
    decide: Callable[[InboundRequest], Decision | None] | None = None
    results_changed: asyncio.Event = field(default_factory=asyncio.Event)
    serving: asyncio.Task[None] | None = None  # the task running ``server.serve``

    async def handle(self, request: InboundRequest) -> Decision:
        self.requests.append(request)
        if self.decide is not None and (decision := self.decide(request)) is not None:
            return decision
        try:
            upstream = await dial((request.authority.host, request.authority.port))
        except OSError:
            return Reject(status=503)  # ztunnel answers 503 when the workload cannot be reached
        return Forward(
            upstream=upstream, headers=(("baggage", "k8s.pod.name=server"),), on_done=self.done
        )

    def done(self, result: RelayResult) -> None:
        self.results.append(result)
        self.results_changed.set()


@pytest.fixture
async def mesh(
    pki: TestPKI, server_credential: Credential, client_credential: Credential
) -> AsyncIterator[Mesh]:
    backend = await asyncio.start_server(echo, "127.0.0.1", 0)
    sock = listener()
    config = HboneConfig(drain_timeout=5.0)
    holder: list[Mesh] = []

    async def handler(request: InboundRequest) -> Decision:
        return await holder[0].handle(request)

    server = HboneServer(
        handler=handler,
        tls=server_context(server_credential, pki.roots_pem),
        trust_domain=pki.trust_domain,
        config=config,
    )
    async with asyncio.TaskGroup() as group, HbonePool(config=config) as pool:
        serving = group.create_task(server.serve(sock))
        target = TunnelTarget(
            destination=sock.getsockname()[:2],
            credential=client_credential,
            roots_pem=pki.roots_pem,
            expected=frozenset({server_credential.identity}),
        )
        mesh = Mesh(
            pki=pki,
            server=server,
            address=sock.getsockname()[:2],
            backend=backend.sockets[0].getsockname()[:2],
            pool=pool,
            target=target,
            serving=serving,
        )
        holder.append(mesh)
        try:
            yield mesh
        finally:
            serving.cancel()
            backend.close()
    sock.close()
