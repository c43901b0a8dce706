"""Per-identity certificates of a node: wanted by pods, prefetched once, forgotten with the last."""

from __future__ import annotations

import random
import ssl
from datetime import UTC, datetime

from ambientmesh.identity.credential import Credential
from ambientmesh.identity.manager import CertificateManager
from ambientmesh.identity.spiffe import Identity
from ambientmesh.testing.clock import FakeClock
from ambientmesh.testing.pki import TestPKI
from ambientmesh.ztunnel.certificates import WorkloadCertificates

A = Identity.parse("spiffe://cluster.local/ns/a/sa/a")
B = Identity.parse("spiffe://cluster.local/ns/b/sa/b")


class Issuer:
    def __init__(self) -> None:
        self.pki = TestPKI()
        self.fetched: list[Identity] = []

    async def fetch(self, identity: Identity) -> Credential:
        self.fetched.append(identity)
        return self.pki.issue(identity)


async def test_an_identity_is_fetched_once_for_all_its_owners_and_dropped_with_the_last() -> None:
    issuer = Issuer()
    clock = FakeClock(start=datetime.now(UTC))  # certificates are checked against wall time
    async with CertificateManager(issuer, clock=clock, rng=random.Random(1)) as manager:
        certificates = WorkloadCertificates(manager, issuer.pki.roots_pem, wait=5)
        certificates.want("pod:1", A)
        certificates.want("node:1", A)
        certificates.want("pod:2", B)
        assert (await certificates.credential(A)).identity == A
        context = await certificates.server_context(A)
        assert isinstance(context, ssl.SSLContext)
        assert await certificates.server_context(A) is context  # listeners keep one context
        assert sorted(certificates.identities) == [A, B]
        certificates.release("pod:1")
        assert manager.current(A) is not None  # node:1 still wants it
        certificates.release("node:1")
        assert manager.current(A) is None
        assert list(certificates.identities) == [B]
        certificates.want("pod:2", A)  # an owner switching identity releases the old one
        assert list(certificates.identities) == [A]
        await certificates.credential(A)
    assert issuer.fetched.count(A) == 2  # once, then again after it was forgotten
    assert issuer.fetched.count(B) == 1
