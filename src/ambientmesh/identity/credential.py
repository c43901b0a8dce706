"""Credentials: a certificate chain and its private key, as a workload or a node presents them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ambientmesh.errors import IdentityError
from ambientmesh.identity.certs import (
    load_certificates,
    load_private_key,
    same_public_key,
    spiffe_uris,
)
from ambientmesh.identity.spiffe import Identity, NodeIdentity


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """What a workload presents: its identity's leaf (then intermediates, no root) and key."""

    identity: Identity
    chain_pem: bytes
    key_pem: bytes
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes) -> Credential:
        """Parse and check a chain and key: the key must match the leaf, which must carry
        exactly one SPIFFE ID of the workload form."""
        leaf, uri = _leaf_and_uri(chain_pem, key_pem)
        return cls(
            identity=Identity.parse(uri),
            chain_pem=chain_pem,
            key_pem=key_pem,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCredential:
    """What a node presents to the control plane: a certificate bound to the node's name."""

    identity: NodeIdentity
    chain_pem: bytes
    key_pem: bytes
    not_before: datetime
    not_after: datetime

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes) -> NodeCredential:
        leaf, uri = _leaf_and_uri(chain_pem, key_pem)
        return cls(
            identity=NodeIdentity.parse(uri),
            chain_pem=chain_pem,
            key_pem=key_pem,
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )


def _leaf_and_uri(chain_pem: bytes, key_pem: bytes) -> tuple[x509.Certificate, str]:
    chain = load_certificates(chain_pem, what="certificate chain")
    key = load_private_key(key_pem, what="private key")
    leaf = chain[0]
    if not same_public_key(leaf, key):
        raise IdentityError("private key does not belong to the first certificate of the chain")
    uris = spiffe_uris(leaf)
    if len(uris) != 1:
        raise IdentityError(f"certificate must carry exactly one SPIFFE URI SAN, found {uris}")
    return leaf, uris[0]
