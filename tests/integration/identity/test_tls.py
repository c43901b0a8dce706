"""Mutual TLS between workloads over real loopback handshakes, and every way it must fail."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from ambientmesh.errors import IdentityError
from ambientmesh.identity import tls
from ambientmesh.identity.spiffe import Identity
from ambientmesh.testing.pki import TestPKI

from .handshake import (
    Outcome,
    ServerClosed,
    bare_client_context,
    exchange,
)

CLIENT = "client-ns/client-sa"
SERVER = "server-ns/server-sa"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


async def connect(
    pki: TestPKI,
    *,
    client: tls.CertifiedKey | None = None,
    server: tls.CertifiedKey | None = None,
    client_roots: bytes | None = None,
    server_roots: bytes | None = None,
    expected: set[Identity] | None = None,
) -> Outcome:
    client_roots = client_roots or pki.roots_pem
    return await exchange(
        server_context=tls.server_context(
            server or pki.issue(SERVER), server_roots or pki.roots_pem
        ),
        client_context=tls.client_context(client or pki.issue(CLIENT), client_roots),
        expected=expected if expected is not None else {pki.identity(SERVER)},
    )


def refused(outcome: Identity | BaseException, reason: str) -> str:
    assert isinstance(outcome, BaseException), f"expected a refusal, got {outcome}"
    text = str(outcome)
    assert reason in text, text
    return text


@pytest.mark.parametrize("intermediate", [False, True])
async def test_both_sides_learn_the_verified_peer_identity(intermediate: bool) -> None:
    pki = TestPKI(intermediate=intermediate)
    outcome = await connect(pki)
    assert outcome.client == pki.identity(SERVER)
    assert outcome.server == pki.identity(CLIENT)


async def test_negotiates_tls13_alpn_h2_without_sni_or_tickets(pki: TestPKI) -> None:
    """As ztunnel: TLS 1.3 only, ALPN h2, no SNI, no session resumption."""
    server_ctx = tls.server_context(pki.issue(SERVER), pki.roots_pem)
    seen_sni: list[str | None] = []
    server_ctx.sni_callback = lambda _obj, name, _ctx: seen_sni.append(name)  # type: ignore[func-returns-value]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    async with server:
        port = server.sockets[0].getsockname()[1]
        ctx = tls.client_context(pki.issue(CLIENT), pki.roots_pem)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=""
        )
        writer.write(b"hi\n")
        assert await reader.readline() == b"hi\n"
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.3"
        assert ssl_object.selected_alpn_protocol() == "h2"
        assert ssl_object.session is None or not ssl_object.session.has_ticket
        writer.close()
        await writer.wait_closed()
    assert seen_sni == [None]


async def test_server_refuses_a_client_speaking_tls12(pki: TestPKI) -> None:
    context = tls.client_context(pki.issue(CLIENT), pki.roots_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    outcome = await exchange(
        server_context=tls.server_context(pki.issue(SERVER), pki.roots_pem),
        client_context=context,
        expected={pki.identity(SERVER)},
    )
    refused(outcome.server, "unsupported protocol")
    assert isinstance(outcome.client, OSError)


async def test_server_requires_a_client_certificate(pki: TestPKI) -> None:
    outcome = await exchange(
        server_context=tls.server_context(pki.issue(SERVER), pki.roots_pem),
        client_context=bare_client_context(pki.roots_pem),
        expected={pki.identity(SERVER)},
    )
    refused(outcome.server, "peer did not return a certificate")
    assert isinstance(outcome.client, ServerClosed | OSError)


class TestServerCertificateRejectedByClient:
    async def test_expired(self, pki: TestPKI) -> None:
        outcome = await connect(pki, server=pki.issue_expired(SERVER))
        refused(outcome.client, "certificate has expired")

    async def test_not_yet_valid(self, pki: TestPKI) -> None:
        outcome = await connect(pki, server=pki.issue_not_yet_valid(SERVER))
        refused(outcome.client, "certificate is not yet valid")

    async def test_chain_from_another_ca(self, pki: TestPKI) -> None:
        outcome = await connect(pki, server=TestPKI().issue(SERVER))
        refused(outcome.client, "certificate verify failed")

    async def test_without_uri_san(self, pki: TestPKI) -> None:
        outcome = await connect(pki, server=pki.issue_without_uri_san(dns_names=["server.test"]))
        refused(outcome.client, "has no SPIFFE URI SAN")

    async def test_identity_not_in_the_expected_set(self, pki: TestPKI) -> None:
        outcome = await connect(pki, server=pki.issue("server-ns/impostor"))
        text = refused(
            outcome.client, "server presented spiffe://cluster.local/ns/server-ns/sa/impostor"
        )
        assert "expected one of: spiffe://cluster.local/ns/server-ns/sa/server-sa" in text

    async def test_empty_expected_set_accepts_nobody(self, pki: TestPKI) -> None:
        outcome = await connect(pki, expected=set())
        refused(outcome.client, "expected one of: nothing")

    async def test_node_credential_cannot_pose_as_a_workload(self, pki: TestPKI) -> None:
        node = pki.issue_with_sans(uris=["spiffe://cluster.local/ambientmesh/node/server-sa"])
        outcome = await connect(pki, server=node)
        refused(outcome.client, "server presented spiffe://cluster.local/ambientmesh/node")

    async def test_several_spiffe_ids_match_if_any_is_expected(self, pki: TestPKI) -> None:
        """Istio's IdentityVerifier accepts a server if any of its SPIFFE IDs is expected."""
        both = pki.issue_with_sans(
            uris=["spiffe://cluster.local/ns/x/sa/y", str(pki.identity(SERVER))]
        )
        outcome = await connect(pki, server=both)
        assert outcome.client == pki.identity(SERVER)


class TestClientCertificateRejectedByServer:
    async def test_expired(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=pki.issue_expired(CLIENT))
        refused(outcome.server, "certificate has expired")
        assert isinstance(outcome.client, ServerClosed | OSError)

    async def test_not_yet_valid(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=pki.issue_not_yet_valid(CLIENT))
        refused(outcome.server, "certificate is not yet valid")

    async def test_chain_from_another_ca(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=TestPKI().issue(CLIENT))
        refused(outcome.server, "certificate verify failed")
        assert isinstance(outcome.client, ServerClosed | OSError)

    async def test_without_uri_san(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=pki.issue_without_uri_san())
        refused(outcome.server, "has no SPIFFE URI SAN")
        assert isinstance(outcome.client, ServerClosed)

    async def test_foreign_trust_domain(self, pki: TestPKI) -> None:
        """Istio's TrustDomainVerifier: the client's trust domain must be the server's."""
        outcome = await connect(pki, client=pki.issue("spiffe://evil.example/ns/a/sa/b"))
        refused(outcome.server, "is from trust domain 'evil.example', not ours ('cluster.local')")
        assert isinstance(outcome.client, ServerClosed)

    async def test_node_credential_is_not_a_workload(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=pki.issue_node_credential("worker-1"))
        refused(outcome.server, "is not a workload identity")

    async def test_ambiguous_identity(self, pki: TestPKI) -> None:
        two = pki.issue_with_sans(
            uris=["spiffe://cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/c/sa/d"]
        )
        outcome = await connect(pki, client=two)
        refused(outcome.server, "ambiguous")

    async def test_non_spiffe_uri_only(self, pki: TestPKI) -> None:
        outcome = await connect(pki, client=pki.issue_with_sans(uris=["https://example.com/a"]))
        refused(outcome.server, "has no SPIFFE URI SAN")


class TestContextConstruction:
    def test_garbage_roots(self, pki: TestPKI) -> None:
        with pytest.raises(IdentityError, match="trust bundle holds no PEM certificate"):
            tls.server_context(pki.issue(SERVER), b"not a certificate")

    def test_corrupt_roots(self, pki: TestPKI) -> None:
        corrupt = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        with pytest.raises(IdentityError, match="trust bundle is not valid PEM"):
            tls.client_context(pki.issue(SERVER), corrupt)

    def test_key_of_another_certificate(self, pki: TestPKI) -> None:
        one, other = pki.issue(SERVER), pki.issue(CLIENT)
        mixed = tls.Credential(
            identity=one.identity,
            chain_pem=one.chain_pem,
            key_pem=other.key_pem,
            not_before=one.not_before,
            not_after=one.not_after,
        )
        with pytest.raises(IdentityError, match="credential cannot be used"):
            tls.server_context(mixed, pki.roots_pem)

    def test_peer_checks_refuse_unverified_or_plain_connections(self, pki: TestPKI) -> None:
        with pytest.raises(IdentityError, match="connection is not TLS"):
            tls.peer_identity(None)
        loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        ssl_object = loose.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
        with pytest.raises(IdentityError, match="was not verified"):
            tls.peer_identity(ssl_object)


async def test_rotating_server_context_presents_the_newest_certificate(pki: TestPKI) -> None:
    first, second = pki.issue(SERVER), pki.issue("server-ns/renamed")
    listening = tls.RotatingServerContext(first, pki.roots_pem)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def server_identity(port: int) -> Identity:
        ctx = tls.client_context(pki.issue(CLIENT), pki.roots_pem)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ctx, server_hostname=""
        )
        writer.write(b"x\n")
        await reader.readline()
        identity = tls.peer_identity(writer.get_extra_info("ssl_object"))
        writer.close()
        await writer.wait_closed()
        return identity

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=listening.context)
    async with server:
        port = server.sockets[0].getsockname()[1]
        assert await server_identity(port) == first.identity
        listening.update(second, pki.roots_pem)
        assert await server_identity(port) == second.identity
