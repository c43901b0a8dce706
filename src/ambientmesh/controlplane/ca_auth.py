"""Who may get which certificate: the caller's node credential and impersonation, decided
purely from facts (Istio's node authorizer, security/pkg/server/ca/node_auth.go)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ambientmesh.errors import IdentityError, NotAuthorized
from ambientmesh.identity.certs import spiffe_uris
from ambientmesh.identity.spiffe import Identity, NodeIdentity

IMPERSONATED_IDENTITY = "ImpersonatedIdentity"


class MissingImpersonation(IdentityError):
    """A node asked for a certificate without saying for which identity."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRequestFacts:
    """What the certificate service knows about one call before deciding."""

    peer_certificates: Sequence[x509.Certificate]  # verified by the TLS layer; leaf first
    impersonated: str | None  # the metadata value, if any
    trust_domain: str
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Impersonation:
    """An authenticated node asking for a workload identity (still to be checked against
    the pods scheduled on the node)."""

    node: NodeIdentity
    identity: Identity


def authenticate_node(
    peer_certificates: Sequence[x509.Certificate], *, trust_domain: str, now: datetime
) -> NodeIdentity:
    """The node a verified client certificate belongs to; NotAuthorized for anyone else.

    The handshake checked the chain; this checks the certificate is a node credential of our
    trust domain and is still valid now (a long-lived channel may outlive its certificate).
    """
    if not peer_certificates:
        raise NotAuthorized("caller presented no client certificate")
    leaf = peer_certificates[0]
    uris = spiffe_uris(leaf)
    if len(uris) != 1:
        raise NotAuthorized(f"caller certificate must name one SPIFFE ID, found {uris}")
    try:
        node = NodeIdentity.parse(uris[0])
    except IdentityError as error:
        raise NotAuthorized(f"caller is not a node: {error.message}") from None
    if node.trust_domain != trust_domain:
        raise NotAuthorized(f"caller {node} is not in trust domain {trust_domain!r}")
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        expiry = leaf.not_valid_after_utc.isoformat()
        raise NotAuthorized(f"caller's node credential is not valid now (expires {expiry})")
    return node


def decide_impersonation(facts: CertificateRequestFacts) -> Impersonation:
    """Authenticate the caller and parse the identity it asks for.

    Raises NotAuthorized (the caller learns nothing more) or MissingImpersonation.
    """
    node = authenticate_node(
        facts.peer_certificates, trust_domain=facts.trust_domain, now=facts.now
    )
    if not facts.impersonated:
        raise MissingImpersonation(
            f"node {node.node} must name the identity it wants in metadata {IMPERSONATED_IDENTITY}"
        )
    try:
        identity = Identity.parse(facts.impersonated)
    except IdentityError as error:
        raise NotAuthorized(
            f"node {node.node} asked for an invalid identity: {error.message}"
        ) from None
    if identity.trust_domain != facts.trust_domain:
        raise NotAuthorized(
            f"node {node.node} asked for {identity}, outside trust domain {facts.trust_domain!r}"
        )
    return Impersonation(node=node, identity=identity)
