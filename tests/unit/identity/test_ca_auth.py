"""Who may ask the CA for what: decided from the caller's verified certificate and metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from ambientmesh.controlplane.ca_auth import (
    CertificateRequestFacts,
    MissingImpersonation,
    decide_impersonation,
)
from ambientmesh.errors import NotAuthorized
from ambientmesh.identity.certs import load_certificates
from ambientmesh.identity.spiffe import Identity, NodeIdentity
from ambientmesh.testing.pki import TestPKI

PKI = TestPKI()
SLEEP = "spiffe://cluster.local/ns/default/sa/sleep"


def leaf(chain_pem: bytes) -> x509.Certificate:
    return load_certificates(chain_pem, what="test")[0]


def facts(
    cert: x509.Certificate | None, impersonated: str | None, *, now: datetime | None = None
) -> CertificateRequestFacts:
    return CertificateRequestFacts(
        peer_certificates=[cert] if cert is not None else [],
        impersonated=impersonated,
        trust_domain="cluster.local",
        now=now or datetime.now(UTC),
    )


NODE = leaf(PKI.issue_node_credential("worker-1").chain_pem)


def test_a_node_may_ask_for_a_workload_identity_of_its_trust_domain() -> None:
    decision = decide_impersonation(facts(NODE, SLEEP))
    assert decision.node == NodeIdentity(trust_domain="cluster.local", node="worker-1")
    assert decision.identity == Identity.parse(SLEEP)


@pytest.mark.parametrize(
    ("cert", "impersonated", "reason"),
    [
        (None, SLEEP, "presented no client certificate"),
        (leaf(PKI.issue("default/sleep").chain_pem), SLEEP, "caller is not a node"),
        (leaf(PKI.issue_without_uri_san().chain_pem), SLEEP, "must name one SPIFFE ID"),
        (
            leaf(TestPKI("other.example").issue_node_credential("worker-1").chain_pem),
            SLEEP,
            "is not in trust domain 'cluster.local'",
        ),
        (NODE, "sleep", "node worker-1 asked for an invalid identity"),
        (NODE, "spiffe://cluster.local/ambientmesh/node/worker-2", "an invalid identity"),
        (NODE, "spiffe://evil.example/ns/default/sa/sleep", "outside trust domain"),
    ],
    ids=["no-cert", "workload", "no-uri", "foreign-node", "not-spiffe", "node-id", "foreign-td"],
)
def test_refusals(cert: x509.Certificate | None, impersonated: str, reason: str) -> None:
    with pytest.raises(NotAuthorized) as refusal:
        decide_impersonation(facts(cert, impersonated))
    assert reason in refusal.value.message


@pytest.mark.parametrize("impersonated", [None, ""])
def test_a_node_must_say_which_identity_it_wants(impersonated: str | None) -> None:
    with pytest.raises(MissingImpersonation, match="metadata ImpersonatedIdentity"):
        decide_impersonation(facts(NODE, impersonated))


def test_an_expired_node_credential_on_a_long_lived_channel_is_refused() -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(NotAuthorized, match="not valid now"):
        decide_impersonation(facts(NODE, SLEEP, now=later))
