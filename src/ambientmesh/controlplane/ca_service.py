"""The certificate service over gRPC, wire-compatible with Istio's
``istio.v1.auth.IstioCertificateService/CreateCertificate``, and the CA status endpoint.

Callers authenticate with mutual TLS using their node credential; a node gets a certificate
for identity X only while a pod running as X is scheduled on it. Refusals of authorization
are opaque to the caller (as Istio's) and logged in one line naming node and identity.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import grpc
from aiohttp import web
from cryptography import x509

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.controlplane.ca_auth import (
    IMPERSONATED_IDENTITY,
    CertificateRequestFacts,
    MissingImpersonation,
    authenticate_node,
    decide_impersonation,
)
from ambientmesh.errors import IdentityError, MeshError, NotAuthorized, Unavailable
from ambientmesh.identity.ca import CONTROL_PLANE_DNS_NAMES, CertificateAuthority
from ambientmesh.identity.spiffe import Identity, NodeIdentity
from ambientmesh.proto import ca_pb2, ca_pb2_grpc

log = logging.getLogger(__name__)

CA_STATUS_PATH = "/apis/ambientmesh.io/v1/ca/status"
# What an unauthorized caller is told: nothing it could use to probe (Istio's wording).
OPAQUE_REFUSAL = "request impersonation authentication failure"

IdentityScheduled = Callable[[str, Identity], Awaitable[bool]]
"""``identity_scheduled(node, identity)``: is a pod running as ``identity`` on ``node``?"""


class CertificateService(ca_pb2_grpc.IstioCertificateServiceServicer):
    """Signs CSRs for the workload identities scheduled on the calling node."""

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        identity_scheduled: IdentityScheduled,
        clock: Clock | None = None,
    ) -> None:
        self._ca = ca
        self._identity_scheduled = identity_scheduled
        self._clock = clock or SystemClock()

    async def CreateCertificate(
        self, request: ca_pb2.IstioCertificateRequest, context: grpc.aio.ServicerContext
    ) -> ca_pb2.IstioCertificateResponse:
        facts = CertificateRequestFacts(
            peer_certificates=peer_certificates(context),
            impersonated=_impersonated(request),
            trust_domain=self._ca.trust_domain,
            now=self._clock.now(),
        )
        try:
            chain = await self._create(facts, request)
            return ca_pb2.IstioCertificateResponse(cert_chain=chain)
        except MissingImpersonation as error:
            log.warning("refused a certificate: %s", error.message)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
        except NotAuthorized as error:
            log.warning("refused a certificate: %s", error.message)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, OPAQUE_REFUSAL)
        except IdentityError as error:
            log.warning("refused to sign a CSR: %s", error.message)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"CSR signing error: {error.message}"
            )
        except MeshError as error:
            log.warning("cannot issue a certificate now: %s", error.message)
            await context.abort(grpc.StatusCode.UNAVAILABLE, error.message)
        raise AssertionError("context.abort always raises")

    async def _create(
        self, facts: CertificateRequestFacts, request: ca_pb2.IstioCertificateRequest
    ) -> list[str]:
        wanted = decide_impersonation(facts)
        node, identity = wanted.node.node, wanted.identity
        if not await self._scheduled(node, identity):
            raise NotAuthorized(
                f"node {node} asked for {identity}, which has no pod scheduled there"
            )
        try:
            chain = self._ca.sign_workload_csr(
                request.csr,
                identity=identity,
                ttl=timedelta(seconds=max(0, min(request.validity_duration, 10**9))),
            )
        except IdentityError as error:
            raise IdentityError(f"node {node}, identity {identity}: {error.message}") from None
        log.debug("signed a certificate for %s on node %s", identity, node)
        return chain

    async def _scheduled(self, node: str, identity: Identity) -> bool:
        try:
            return await self._identity_scheduled(node, identity)
        except MeshError as error:
            raise Unavailable(f"cannot check the pods of node {node}: {error.message}") from None


def _impersonated(request: ca_pb2.IstioCertificateRequest) -> str | None:
    field = request.metadata.fields.get(IMPERSONATED_IDENTITY)
    if field is None or field.WhichOneof("kind") != "string_value":
        return None
    return str(field.string_value)


def peer_certificates(context: grpc.aio.ServicerContext) -> list[x509.Certificate]:
    """The client certificate the TLS layer verified (empty on an insecure port)."""
    pems: Sequence[bytes] = context.auth_context().get("x509_pem_cert", ())
    certificates: list[x509.Certificate] = []
    for pem in pems:
        try:
            certificates.append(x509.load_pem_x509_certificate(pem))
        except ValueError:
            log.warning("could not parse the client certificate gRPC verified")
    return certificates


def caller_node(
    context: grpc.aio.ServicerContext, *, trust_domain: str, clock: Clock
) -> NodeIdentity:
    """The authenticated node behind a call (for other services on the same server, e.g.
    discovery). Raises NotAuthorized if the caller is not a valid node of ``trust_domain``."""
    return authenticate_node(peer_certificates(context), trust_domain=trust_domain, now=clock.now())


def add_certificate_service(server: grpc.aio.Server, service: CertificateService) -> None:
    ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(service, server)


def server_credentials(
    ca: CertificateAuthority, *, dns_names: Sequence[str] = CONTROL_PLANE_DNS_NAMES
) -> grpc.ServerCredentials:
    """mTLS for the control plane's gRPC port: a fresh serving certificate from ``ca`` with
    ``dns_names``; client certificates required and chained to the CA's roots.

    The certificate lives ``CaSettings.server_ttl`` (a year) and is re-issued whenever the
    control plane starts: grpc.aio cannot swap server certificates on a live port.
    """
    chain_pem, key_pem = ca.issue_server_credential(dns_names)
    return grpc.ssl_server_credentials(
        [(key_pem, chain_pem)], root_certificates=ca.roots_pem, require_client_auth=True
    )


def ca_status_routes(ca: CertificateAuthority) -> list[web.RouteDef]:
    """``GET /apis/ambientmesh.io/v1/ca/status`` for the API server's extra routes."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response(ca.status().to_json())

    return [web.get(CA_STATUS_PATH, status)]
