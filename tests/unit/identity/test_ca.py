from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ambientmesh.errors import IdentityError
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.identity.certs import (
    fingerprint_sha256,
    generate_key,
    load_certificates,
    uri_sans,
    verify_chain,
)
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.csr import build_csr
from ambientmesh.identity.spiffe import Identity, NodeIdentity
from ambientmesh.testing.clock import FakeClock
from ambientmesh.testing.pki import TestPKI

SLEEP = Identity.parse("spiffe://cluster.local/ns/default/sa/sleep")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sign(ca: CertificateAuthority, identity: Identity = SLEEP, **kwargs: object) -> list[str]:
    return ca.sign_workload_csr(build_csr(identity, generate_key()), identity=identity, **kwargs)  # type: ignore[arg-type]


def parse(chain: list[str]) -> list[x509.Certificate]:
    return [load_certificates(pem, what="test")[0] for pem in chain]


class TestSelfSignedRoot:
    def test_first_start_creates_and_persists_a_p256_root_with_a_private_key(
        self, tmp_path: Path
    ) -> None:
        ca = CertificateAuthority.open(tmp_path, clock=FakeClock())
        assert mode(tmp_path / "ca") == 0o700
        assert mode(tmp_path / "ca" / "root-key.pem") == 0o600
        root = load_certificates((tmp_path / "ca" / "root-cert.pem").read_bytes(), what="root")[0]
        assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
        assert root.not_valid_after_utc - root.not_valid_before_utc == timedelta(days=3650)
        assert ca.status().source == "self-signed"
        assert not list((tmp_path / "ca").glob(".*.tmp"))  # no temporary file left behind

    def test_restart_loads_the_same_root_and_the_issued_count(self, tmp_path: Path) -> None:
        first = CertificateAuthority.open(tmp_path, clock=FakeClock())
        sign(first)
        sign(first)
        first.flush()  # what shutdown does
        second = CertificateAuthority.open(tmp_path, clock=FakeClock())
        assert second.roots_pem == first.roots_pem
        assert second.status().certificates_issued == 2

    def test_the_count_is_written_at_most_once_a_second(self, tmp_path: Path) -> None:
        clock = FakeClock()
        ca = CertificateAuthority.open(tmp_path, clock=clock)
        counter = tmp_path / "ca" / "issued"
        sign(ca)
        sign(ca)
        assert counter.read_text() == "1\n"  # the second write waits for the interval
        clock.advance(1)
        sign(ca)
        assert counter.read_text() == "3\n"

    def test_missing_key_is_an_error_not_a_silent_new_root(self, tmp_path: Path) -> None:
        CertificateAuthority.open(tmp_path, clock=FakeClock())
        (tmp_path / "ca" / "root-key.pem").unlink()
        with pytest.raises(IdentityError, match="exists but its key"):
            CertificateAuthority.open(tmp_path, clock=FakeClock())

    def test_a_key_that_is_not_the_roots_is_refused(self, tmp_path: Path) -> None:
        CertificateAuthority.open(tmp_path / "a", clock=FakeClock())
        CertificateAuthority.open(tmp_path / "b", clock=FakeClock())
        (tmp_path / "a" / "ca" / "root-key.pem").write_bytes(
            (tmp_path / "b" / "ca" / "root-key.pem").read_bytes()
        )
        with pytest.raises(IdentityError, match="is not the key of the root"):
            CertificateAuthority.open(tmp_path / "a", clock=FakeClock())

    def test_key_without_certificate_after_a_crash_starts_over(self, tmp_path: Path) -> None:
        CertificateAuthority.open(tmp_path, clock=FakeClock())
        (tmp_path / "ca" / "root-cert.pem").unlink()
        ca = CertificateAuthority.open(tmp_path, clock=FakeClock())
        assert (tmp_path / "ca" / "root-cert.pem").read_bytes() == ca.roots_pem

    def test_garbage_issued_count_is_reset_not_fatal(self, tmp_path: Path) -> None:
        CertificateAuthority.open(tmp_path, clock=FakeClock())
        (tmp_path / "ca" / "issued").write_text("many")
        ca = CertificateAuthority.open(tmp_path, clock=FakeClock())
        assert ca.status().certificates_issued == 0


class TestWorkloadCertificates:
    def test_leaf_has_exactly_the_identity_and_chain_ends_at_the_root(self) -> None:
        clock = FakeClock()
        ca = CertificateAuthority.open_in_memory(clock=clock)
        chain = parse(sign(ca))
        leaf, root = chain[0], chain[-1]
        assert len(chain) == 2
        assert uri_sans(leaf) == [str(SLEEP)]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.critical
        assert len(list(san.value)) == 1
        assert leaf.not_valid_before_utc == clock.now()
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=24)
        assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
        assert root == load_certificates(ca.roots_pem, what="roots")[0]
        verify_chain(chain[:-1], [root], at=clock.now())

    def test_lifetime_is_configurable_down_to_one_minute(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        leaf = parse(sign(ca, ttl=timedelta(minutes=1)))[0]
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(minutes=1)
        with pytest.raises(IdentityError, match="below the minimum 0:01:00"):
            sign(ca, ttl=timedelta(seconds=59))
        with pytest.raises(IdentityError, match="exceeds the maximum 90 days"):
            sign(ca, ttl=timedelta(days=91))

    def test_zero_lifetime_means_the_default_as_in_istio(self) -> None:
        settings = CaSettings(workload_ttl=timedelta(hours=1))
        ca = CertificateAuthority.open_in_memory(clock=FakeClock(), settings=settings)
        leaf = parse(sign(ca, ttl=timedelta(0)))[0]
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=1)

    def test_settings_refuse_lifetimes_under_a_minute(self) -> None:
        with pytest.raises(IdentityError, match="shorter than 1 minute"):
            CaSettings(min_workload_ttl=timedelta(seconds=10), workload_ttl=timedelta(seconds=30))

    def test_a_leaf_never_outlives_its_signer(self) -> None:
        clock = FakeClock()
        ca = CertificateAuthority.open_in_memory(clock=clock)
        clock.advance((timedelta(days=3650) - timedelta(hours=1)).total_seconds())
        leaf = parse(sign(ca))[0]
        assert leaf.not_valid_after_utc == ca.material.root.not_valid_after_utc

    def test_an_expired_signer_signs_nothing(self) -> None:
        clock = FakeClock()
        ca = CertificateAuthority.open_in_memory(clock=clock)
        clock.advance(timedelta(days=3651).total_seconds())
        with pytest.raises(IdentityError, match="signing certificate expired"):
            sign(ca)

    def test_csr_for_another_identity_is_refused(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        other = Identity.parse("spiffe://cluster.local/ns/kube-system/sa/admin")
        with pytest.raises(
            IdentityError, match=re.escape("CSR names 'spiffe://cluster.local/ns/kube-")
        ):
            ca.sign_workload_csr(build_csr(other, generate_key()), identity=SLEEP)

    def test_foreign_trust_domain_is_refused(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        foreign = Identity.parse("spiffe://evil.example/ns/default/sa/sleep")
        with pytest.raises(IdentityError, match="outside this CA's trust domain"):
            sign(ca, foreign)

    def test_refusals_are_not_counted(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        with pytest.raises(IdentityError):
            ca.sign_workload_csr(b"garbage", identity=SLEEP)
        sign(ca)
        assert ca.status().certificates_issued == 1

    def test_in_process_workload_credential(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        credential = ca.issue_workload_credential(SLEEP)
        assert credential.identity == SLEEP
        assert Credential.from_pem(credential.chain_pem, credential.key_pem) == credential


class TestPluginCa:
    def clock(self) -> FakeClock:
        return FakeClock(start=datetime.now(UTC))

    def test_intermediate_from_plugin_files_is_used_and_chained(self, tmp_path: Path) -> None:
        pki = TestPKI(intermediate=True)
        pki.write_plugin_layout(tmp_path / "cacerts")
        ca = CertificateAuthority.open(tmp_path, clock=self.clock())
        chain = parse(sign(ca))
        assert chain[1:] == [pki.issuer.cert, pki.root_cert]
        assert ca.roots_pem == pki.roots_pem
        status = ca.status()
        assert status.source == "plug-in"
        assert status.root.fingerprint_sha256 == fingerprint_sha256(pki.root_cert)
        assert status.signer.fingerprint_sha256 == fingerprint_sha256(pki.issuer.cert)

    def test_root_used_directly_as_plugin(self, tmp_path: Path) -> None:
        pki = TestPKI()
        pki.write_plugin_layout(tmp_path / "cacerts")
        ca = CertificateAuthority.open(tmp_path, clock=self.clock())
        assert parse(sign(ca))[1:] == [pki.root_cert]

    def test_explicit_plugin_dir_and_a_two_root_bundle(self, tmp_path: Path) -> None:
        pki, next_root = TestPKI(intermediate=True), TestPKI()
        pki.write_plugin_layout(tmp_path / "mine")
        bundle = pki.roots_pem + next_root.roots_pem
        (tmp_path / "mine" / "root-cert.pem").write_bytes(bundle)
        ca = CertificateAuthority.open(
            tmp_path / "state", clock=self.clock(), plugin_dir=tmp_path / "mine"
        )
        assert ca.roots_pem == bundle
        assert len(ca.status().bundle) == 2
        assert parse(sign(ca))[-1] == pki.root_cert

    def test_missing_files_are_named(self, tmp_path: Path) -> None:
        TestPKI().write_plugin_layout(tmp_path / "cacerts")
        (tmp_path / "cacerts" / "cert-chain.pem").unlink()
        (tmp_path / "cacerts" / "ca-key.pem").unlink()
        with pytest.raises(IdentityError, match=re.escape("lacks ca-key.pem, cert-chain.pem")):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_key_of_another_ca_is_refused(self, tmp_path: Path) -> None:
        TestPKI(intermediate=True).write_plugin_layout(tmp_path / "cacerts")
        TestPKI(intermediate=True).write_plugin_layout(tmp_path / "other")
        (tmp_path / "cacerts" / "ca-key.pem").write_bytes(
            (tmp_path / "other" / "ca-key.pem").read_bytes()
        )
        with pytest.raises(IdentityError, match=re.escape("ca-key.pem is not the key")):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_chain_leading_to_another_root_is_refused(self, tmp_path: Path) -> None:
        TestPKI(intermediate=True).write_plugin_layout(tmp_path / "cacerts")
        (tmp_path / "cacerts" / "root-cert.pem").write_bytes(TestPKI().roots_pem)
        with pytest.raises(IdentityError, match="does not lead to a trusted root"):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_chain_not_starting_at_ca_cert_is_refused(self, tmp_path: Path) -> None:
        pki = TestPKI(intermediate=True)
        pki.write_plugin_layout(tmp_path / "cacerts")
        (tmp_path / "cacerts" / "cert-chain.pem").write_bytes(pki.roots_pem)
        with pytest.raises(IdentityError, match="must start with the certificate of ca-cert"):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_leaf_as_ca_cert_is_refused(self, tmp_path: Path) -> None:
        pki = TestPKI()
        pki.write_plugin_layout(tmp_path / "cacerts")
        leaf = pki.issue("ns/sa")
        (tmp_path / "cacerts" / "ca-cert.pem").write_bytes(leaf.chain_pem)
        (tmp_path / "cacerts" / "ca-key.pem").write_bytes(leaf.key_pem)
        with pytest.raises(IdentityError, match="is not a CA certificate"):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_garbage_pem_is_refused(self, tmp_path: Path) -> None:
        TestPKI().write_plugin_layout(tmp_path / "cacerts")
        (tmp_path / "cacerts" / "root-cert.pem").write_text("not a certificate")
        with pytest.raises(
            IdentityError, match=re.escape("root-cert.pem holds no PEM certificate")
        ):
            CertificateAuthority.open(tmp_path, clock=self.clock())

    def test_expired_plugin_is_refused(self, tmp_path: Path) -> None:
        TestPKI(intermediate=True).write_plugin_layout(tmp_path / "cacerts")
        clock = self.clock()
        clock.advance(timedelta(days=366).total_seconds())
        with pytest.raises(IdentityError, match="expired"):
            CertificateAuthority.open(tmp_path, clock=clock)


class TestNodeAndServerCredentials:
    def test_node_credential_is_bound_to_the_node_and_only_for_clients(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        credential = ca.issue_node_credential("worker-1")
        assert credential.identity == NodeIdentity(trust_domain="cluster.local", node="worker-1")
        leaf = load_certificates(credential.chain_pem, what="node")[0]
        assert uri_sans(leaf) == ["spiffe://cluster.local/ambientmesh/node/worker-1"]
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    def test_written_node_credential_files(self, tmp_path: Path) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock(start=datetime.now(UTC)))
        files = ca.write_node_credential("worker-1", tmp_path / "node")
        assert mode(files.key) == 0o600
        chain, key, roots = files.read()
        assert roots == ca.roots_pem
        assert NodeCredential.from_pem(chain, key).identity.node == "worker-1"

    def test_control_plane_serving_credential_has_the_istiod_names(self) -> None:
        ca = CertificateAuthority.open_in_memory(clock=FakeClock())
        chain, _ = ca.issue_server_credential()
        leaf = load_certificates(chain, what="server")[0]
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["istiod.istio-system.svc", "localhost"]
        assert uri_sans(leaf) == []


def test_status_json() -> None:
    clock = FakeClock()
    ca = CertificateAuthority.open_in_memory(clock=clock)
    sign(ca)
    status = ca.status().to_json()
    assert status["trustDomain"] == "cluster.local"
    assert status["certificatesIssued"] == 1
    assert status["root"]["notAfter"] == "2035-12-30T00:00:00Z"
    assert len(status["root"]["fingerprintSHA256"].split(":")) == 32
    assert status["trustBundle"] == [status["root"]]
