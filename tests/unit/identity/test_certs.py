"""Certificate reading helpers, chain checks and credential parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ambientmesh.errors import IdentityError
from ambientmesh.identity.certs import (
    fingerprint_sha256,
    load_certificates,
    load_private_key,
    verify_chain,
)
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.testing.pki import TestPKI

PKI = TestPKI(intermediate=True)


def chain_of(pem: bytes) -> list:  # type: ignore[type-arg]
    return load_certificates(pem, what="test")


def test_verify_chain_through_an_intermediate_returns_the_root() -> None:
    chain = chain_of(PKI.issue("ns/sa").chain_pem)
    assert verify_chain(chain, [PKI.root_cert], at=datetime.now(UTC)) == PKI.root_cert


def test_verify_chain_refuses_other_roots_expiry_and_broken_links() -> None:
    now = datetime.now(UTC)
    chain = chain_of(PKI.issue("ns/sa").chain_pem)
    with pytest.raises(IdentityError, match="does not lead to a trusted root"):
        verify_chain(chain, [TestPKI().root_cert], at=now)
    with pytest.raises(IdentityError, match="expired"):
        verify_chain(chain, [PKI.root_cert], at=now + timedelta(hours=2))
    with pytest.raises(IdentityError, match="not valid until"):
        verify_chain(chain, [PKI.root_cert], at=now - timedelta(hours=2))
    stranger = chain_of(TestPKI(intermediate=True).issue("ns/sa").chain_pem)
    with pytest.raises(IdentityError, match="is not issued by the next one"):
        verify_chain([chain[0], stranger[1]], [PKI.root_cert], at=now)
    with pytest.raises(IdentityError, match="empty"):
        verify_chain([], [PKI.root_cert], at=now)


def test_fingerprint_is_openssl_style() -> None:
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", fingerprint_sha256(PKI.root_cert))


def test_pem_errors_name_what_was_being_read() -> None:
    with pytest.raises(IdentityError, match="root bundle holds no PEM certificate"):
        load_certificates(b"junk", what="root bundle")
    with pytest.raises(IdentityError, match="ca-key is not an unencrypted PEM private key"):
        load_private_key(b"junk", what="ca-key")


def test_credential_from_pem_checks_key_and_identity() -> None:
    issued = PKI.issue("ns/sa")
    parsed = Credential.from_pem(issued.chain_pem, issued.key_pem)
    assert parsed == issued
    with pytest.raises(IdentityError, match="does not belong to the first certificate"):
        Credential.from_pem(issued.chain_pem, PKI.issue("ns/other").key_pem)
    two = PKI.issue_with_sans(uris=["spiffe://cluster.local/ns/a/sa/b", str(issued.identity)])
    with pytest.raises(IdentityError, match="exactly one SPIFFE URI SAN"):
        Credential.from_pem(two.chain_pem, two.key_pem)
    node = PKI.issue_node_credential("worker-1")
    with pytest.raises(IdentityError, match="not a workload identity"):
        Credential.from_pem(node.chain_pem, node.key_pem)
    assert NodeCredential.from_pem(node.chain_pem, node.key_pem) == node
