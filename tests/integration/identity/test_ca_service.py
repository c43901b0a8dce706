"""The certificate service over real gRPC with mutual TLS, on a unix socket and on TCP."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.ca_service import (
    CA_STATUS_PATH,
    CertificateService,
    add_certificate_service,
    ca_status_routes,
    server_credentials,
)
from ambientmesh.errors import IdentityError, NotAuthorized, Unavailable
from ambientmesh.identity import tls
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.identity.ca_client import CaClient, open_channel
from ambientmesh.identity.certs import generate_key, load_certificates, uri_sans
from ambientmesh.identity.credential import NodeCredential
from ambientmesh.identity.csr import build_csr
from ambientmesh.identity.spiffe import Identity
from ambientmesh.proto import ca_pb2, ca_pb2_grpc
from ambientmesh.testing.pki import TestPKI

from .handshake import exchange

SLEEP = Identity.parse("spiffe://cluster.local/ns/default/sa/sleep")
HTTPBIN = Identity.parse("spiffe://cluster.local/ns/default/sa/httpbin")


@dataclass
class Scheduler:
    """Stands in for the resource store: which identities have pods on which node."""

    pods: dict[str, set[Identity]] = field(default_factory=dict)
    broken: bool = False

    async def identity_scheduled(self, node: str, identity: Identity) -> bool:
        if self.broken:
            raise Unavailable("resource store is not ready")
        return identity in self.pods.get(node, set())


@dataclass
class ControlPlane:
    ca: CertificateAuthority
    scheduler: Scheduler
    unix_target: str
    tcp_target: str
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def node(self, name: str) -> NodeCredential:
        return self.ca.issue_node_credential(name)

    def client(self, node: NodeCredential, *, tcp: bool = False, **kwargs: object) -> CaClient:
        channel = open_channel(
            self.tcp_target if tcp else self.unix_target, node, self.ca.roots_pem
        )
        return CaClient(channel, roots_pem=self.ca.roots_pem, clock=SystemClock(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    directory = Path(tempfile.mkdtemp(prefix="am-ca-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def plane(socket_dir: Path) -> AsyncIterator[ControlPlane]:
    ca = CertificateAuthority.open_in_memory()
    scheduler = Scheduler(pods={"worker-1": {SLEEP}, "worker-2": {HTTPBIN}})
    server = grpc.aio.server()
    add_certificate_service(
        server, CertificateService(ca, identity_scheduled=scheduler.identity_scheduled)
    )
    credentials = server_credentials(ca)
    unix_target = f"unix:{socket_dir / 'xds.sock'}"
    server.add_secure_port(unix_target, credentials)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    plane = ControlPlane(ca, scheduler, unix_target, f"127.0.0.1:{port}")
    try:
        yield plane
    finally:
        for channel in plane.channels:
            await channel.close()
        await server.stop(grace=None)


async def raw_call(
    plane: ControlPlane, node: NodeCredential | None, csr: str, impersonated: str | None
) -> grpc.aio.AioRpcError:
    """Call CreateCertificate directly and return the error it must end in.

    With a credential the server trusts, the channel is first brought up (gRPC retries a
    connection attempt that a loaded machine let fail), so a refusal seen here is the
    service's, not a transport hiccup; without one the handshake itself must fail.
    """
    if node is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=plane.ca.roots_pem)
        channel = grpc.aio.secure_channel(
            plane.unix_target,
            credentials,
            options=[("grpc.ssl_target_name_override", "istiod.istio-system.svc")],
        )
    else:
        channel = open_channel(plane.unix_target, node, plane.ca.roots_pem)
    request = ca_pb2.IstioCertificateRequest(csr=csr, validity_duration=3600)
    if impersonated is not None:
        request.metadata.update({"ImpersonatedIdentity": impersonated})
    async with channel:
        if node is not None and _trusted(plane, node):
            await asyncio.wait_for(channel.channel_ready(), 10)
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.CreateCertificate(request, timeout=10)
    return caught.value


def _trusted(plane: ControlPlane, credential: NodeCredential) -> bool:
    """Whether the credential was signed by this control plane's CA (its handshake can pass)."""
    leaf = load_certificates(credential.chain_pem, what="the credential")[0]
    for root in load_certificates(plane.ca.roots_pem, what="the roots"):
        try:
            leaf.verify_directly_issued_by(root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def csr_for(identity: Identity) -> str:
    return build_csr(identity, generate_key()).decode()


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
async def test_node_gets_a_certificate_for_a_pod_scheduled_on_it(
    plane: ControlPlane, tcp: bool
) -> None:
    client = plane.client(plane.node("worker-1"), tcp=tcp)
    issued = plane.ca.status().certificates_issued
    credential = await client.fetch(SLEEP)
    assert credential.identity == SLEEP
    assert credential.lifetime == timedelta(hours=24)
    leaf, *rest = load_certificates(credential.chain_pem, what="chain")
    assert uri_sans(leaf) == [str(SLEEP)]
    assert rest == []  # no root in the credential; it lives in the trust bundle
    assert plane.ca.status().certificates_issued == issued + 1


async def test_issued_credentials_work_for_mutual_tls_between_nodes(plane: ControlPlane) -> None:
    sleep = await plane.client(plane.node("worker-1")).fetch(SLEEP)
    httpbin = await plane.client(plane.node("worker-2")).fetch(HTTPBIN)
    outcome = await exchange(
        server_context=tls.server_context(httpbin, plane.ca.roots_pem),
        client_context=tls.client_context(sleep, plane.ca.roots_pem),
        expected={HTTPBIN},
    )
    assert (outcome.client, outcome.server) == (HTTPBIN, SLEEP)


async def test_requested_lifetime_is_honoured(plane: ControlPlane) -> None:
    client = plane.client(plane.node("worker-1"), ttl=timedelta(minutes=1))
    assert (await client.fetch(SLEEP)).lifetime == timedelta(minutes=1)


async def test_a_node_asking_for_an_identity_not_scheduled_on_it_is_refused(
    plane: ControlPlane, caplog: pytest.LogCaptureFixture
) -> None:
    """Istio's node authorizer: opaque UNAUTHENTICATED to the caller, reason in the log."""
    client = plane.client(plane.node("worker-2"))
    issued = plane.ca.status().certificates_issued
    with caplog.at_level(logging.WARNING), pytest.raises(NotAuthorized) as refusal:
        await client.fetch(SLEEP)
    assert "UNAUTHENTICATED request impersonation authentication failure" in refusal.value.message
    assert "worker-1" not in refusal.value.message
    lines = [r.getMessage() for r in caplog.records if "has no pod scheduled" in r.getMessage()]
    assert lines == [
        "refused a certificate: node worker-2 asked for "
        "spiffe://cluster.local/ns/default/sa/sleep, which has no pod scheduled there"
    ]
    assert plane.ca.status().certificates_issued == issued


async def test_refused_once_the_pod_leaves_the_node(plane: ControlPlane) -> None:
    client = plane.client(plane.node("worker-1"))
    await client.fetch(SLEEP)
    plane.scheduler.pods["worker-1"].clear()
    with pytest.raises(NotAuthorized):
        await client.fetch(SLEEP)


@pytest.mark.parametrize(
    ("csr", "impersonated", "code", "details"),
    [
        (
            lambda: csr_for(HTTPBIN),
            str(SLEEP),
            grpc.StatusCode.INVALID_ARGUMENT,
            "CSR names 'spiffe://cluster.local/ns/default/sa/httpbin' but the request is for "
            "spiffe://cluster.local/ns/default/sa/sleep",
        ),
        (lambda: "garbage", str(SLEEP), grpc.StatusCode.INVALID_ARGUMENT, "CSR is not PEM"),
        (lambda: csr_for(SLEEP), None, grpc.StatusCode.INVALID_ARGUMENT, "ImpersonatedIdentity"),
        (
            lambda: csr_for(SLEEP),
            "sleep",
            grpc.StatusCode.UNAUTHENTICATED,
            "authentication failure",
        ),
        (
            lambda: csr_for(SLEEP),
            "spiffe://evil.example/ns/default/sa/sleep",
            grpc.StatusCode.UNAUTHENTICATED,
            "authentication failure",
        ),
        (
            lambda: csr_for(SLEEP),
            "spiffe://cluster.local/ambientmesh/node/worker-1",
            grpc.StatusCode.UNAUTHENTICATED,
            "authentication failure",
        ),
    ],
    ids=["san-differs", "garbage-pem", "no-impersonation", "not-spiffe", "foreign-td", "node-id"],
)
async def test_bad_requests_are_refused_with_a_clear_status(
    plane: ControlPlane, csr: object, impersonated: str | None, code: grpc.StatusCode, details: str
) -> None:
    assert callable(csr)
    error = await raw_call(plane, plane.node("worker-1"), csr(), impersonated)
    assert error.code() == code
    assert details in (error.details() or "")


def forged_csr(*, names: list[x509.GeneralName], key: object = None, tamper: bool = False) -> str:
    private = key or generate_key()
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
    )
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    if tamper:
        der[-1] ^= 1
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("csr", "details"),
    [
        (
            lambda: forged_csr(
                names=[x509.UniformResourceIdentifier(str(SLEEP)), x509.DNSName("evil.example")]
            ),
            "exactly one SAN",
        ),
        (
            lambda: forged_csr(
                names=[x509.UniformResourceIdentifier(str(SLEEP))],
                key=rsa.generate_private_key(65537, 2048),
            ),
            "only ECDSA P-256",
        ),
        (
            lambda: forged_csr(names=[x509.UniformResourceIdentifier(str(SLEEP))], tamper=True),
            "signature does not verify",
        ),
    ],
    ids=["extra-san", "rsa-key", "bad-signature"],
)
async def test_malformed_csrs_are_refused(plane: ControlPlane, csr: object, details: str) -> None:
    assert callable(csr)
    error = await raw_call(plane, plane.node("worker-1"), csr(), str(SLEEP))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in (error.details() or "")


async def test_a_workload_credential_cannot_act_as_a_node(plane: ControlPlane) -> None:
    workload = plane.ca.issue_workload_credential(SLEEP)
    as_node = NodeCredential(
        identity=plane.node("x").identity,  # the type only; the certificate is the workload's
        chain_pem=workload.chain_pem,
        key_pem=workload.key_pem,
        not_before=workload.not_before,
        not_after=workload.not_after,
    )
    error = await raw_call(plane, as_node, csr_for(SLEEP), str(SLEEP))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_callers_without_a_trusted_client_certificate_fail_the_handshake(
    plane: ControlPlane,
) -> None:
    anonymous = await raw_call(plane, None, csr_for(SLEEP), str(SLEEP))
    assert anonymous.code() == grpc.StatusCode.UNAVAILABLE
    stranger = TestPKI().issue_node_credential("worker-1")
    foreign = await raw_call(plane, stranger, csr_for(SLEEP), str(SLEEP))
    assert foreign.code() == grpc.StatusCode.UNAVAILABLE


async def test_an_unready_store_is_unavailable_not_a_refusal(plane: ControlPlane) -> None:
    plane.scheduler.broken = True
    error = await raw_call(plane, plane.node("worker-1"), csr_for(SLEEP), str(SLEEP))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "resource store is not ready" in (error.details() or "")


async def test_the_ca_keeps_serving_everyone_else_after_bad_requests(plane: ControlPlane) -> None:
    node = plane.node("worker-1")
    for bad in ("garbage", csr_for(HTTPBIN)):
        await raw_call(plane, node, bad, str(SLEEP))
    results = await asyncio.gather(*(plane.client(node).fetch(SLEEP) for _ in range(5)))
    assert {credential.identity for credential in results} == {SLEEP}


async def test_client_refuses_a_response_from_an_untrusted_ca(plane: ControlPlane) -> None:
    node = plane.node("worker-1")
    channel = open_channel(plane.unix_target, node, plane.ca.roots_pem)
    plane.channels.append(channel)
    client = CaClient(channel, roots_pem=TestPKI().roots_pem, clock=SystemClock())
    with pytest.raises(IdentityError, match=re.escape("is not trusted")):
        await client.fetch(SLEEP)


async def test_ca_status_endpoint_serves_the_status_as_json() -> None:
    ca = CertificateAuthority.open_in_memory(settings=CaSettings(trust_domain="mesh.example"))
    app = web.Application()
    app.add_routes(ca_status_routes(ca))
    async with TestClient(TestServer(app)) as client:
        response = await client.get(CA_STATUS_PATH)
        assert response.status == 200
        body = await response.json()
    assert body == ca.status().to_json()
    assert body["trustDomain"] == "mesh.example"
