"""The gRPC client of the certificate service: a node asks for a workload certificate.

The private key is generated here, on the node, and never leaves it: only the CSR travels.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import grpc
from cryptography import x509

from ambientmesh.clock import Clock
from ambientmesh.errors import IdentityError, MeshError, NotAuthorized, Unavailable
from ambientmesh.identity.certs import (
    certs_to_pem,
    generate_key,
    key_to_pem,
    load_certificates,
    verify_chain,
)
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.csr import build_csr
from ambientmesh.identity.spiffe import Identity
from ambientmesh.proto import ca_pb2, ca_pb2_grpc

log = logging.getLogger(__name__)

CONTROL_PLANE_NAME = "istiod.istio-system.svc"
IMPERSONATED_IDENTITY = "ImpersonatedIdentity"


def channel_credentials(node: NodeCredential, roots_pem: bytes) -> grpc.ChannelCredentials:
    """mTLS to the control plane: present the node credential, trust the mesh roots."""
    return grpc.ssl_channel_credentials(
        root_certificates=roots_pem, private_key=node.key_pem, certificate_chain=node.chain_pem
    )


def open_channel(
    target: str,
    node: NodeCredential,
    roots_pem: bytes,
    *,
    server_name: str = CONTROL_PLANE_NAME,
) -> grpc.aio.Channel:
    """A secure channel to ``target`` (``unix:/path`` or ``host:port``); the server
    certificate must carry ``server_name`` whatever the address is."""
    return grpc.aio.secure_channel(
        target,
        channel_credentials(node, roots_pem),
        options=[("grpc.ssl_target_name_override", server_name)],
    )


class CaClient:
    """Fetches workload certificates (the real ``CertificateFetcher`` of the manager)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        roots_pem: bytes,
        clock: Clock,
        ttl: timedelta = timedelta(hours=24),
        rpc_timeout: float = 10.0,
    ) -> None:
        self._stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        self._roots = load_certificates(roots_pem, what="trust bundle")
        self._clock = clock
        self._ttl = ttl
        self._rpc_timeout = rpc_timeout

    async def fetch(self, identity: Identity) -> Credential:
        """A new credential for ``identity``; MeshError subclasses say why there is none."""
        key = generate_key()
        request = ca_pb2.IstioCertificateRequest(
            csr=build_csr(identity, key).decode("ascii"),
            validity_duration=int(self._ttl.total_seconds()),
        )
        request.metadata.update({IMPERSONATED_IDENTITY: str(identity)})
        try:
            response = await self._stub.CreateCertificate(request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as error:
            raise _rpc_error(identity, error) from None
        chain = self._check_response(identity, list(response.cert_chain))
        credential = Credential.from_pem(certs_to_pem(chain), key_to_pem(key))
        if credential.identity != identity:  # as ztunnel: never keep a leaf for someone else
            raise IdentityError(
                f"CA returned a certificate for {credential.identity}, not {identity}"
            )
        return credential

    def _check_response(self, identity: Identity, pems: list[str]) -> list[x509.Certificate]:
        """Leaf and intermediates, once the leaf is our identity and chains to our roots."""
        if not pems:
            raise IdentityError(f"CA returned an empty certificate chain for {identity}")
        certs = [cert for pem in pems for cert in load_certificates(pem, what="CA response")]
        chain = [cert for cert in certs if cert not in self._roots] or certs[:1]
        try:
            verify_chain(chain, self._roots, at=self._clock.now())
        except IdentityError as error:
            raise IdentityError(
                f"CA response for {identity} is not trusted: {error.message}"
            ) from None
        return chain


def _rpc_error(identity: Identity, error: grpc.aio.AioRpcError) -> MeshError:
    code, details = error.code(), error.details() or ""
    message = f"CA refused {identity}: {code.name} {details}".rstrip()
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return NotAuthorized(message)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return IdentityError(message)
    return Unavailable(f"CA unreachable for {identity}: {code.name} {details}".rstrip())
