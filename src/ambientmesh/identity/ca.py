"""The certificate authority: signs workload CSRs, mints node and control-plane credentials."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import IdentityError
from ambientmesh.identity import ca_files
from ambientmesh.identity.ca_files import CaMaterial, CredentialFiles, IssuedCounter
from ambientmesh.identity.certs import (
    certs_to_pem,
    check_validity,
    fingerprint_sha256,
    generate_key,
    key_to_pem,
)
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.csr import build_csr, check_csr
from ambientmesh.identity.issuance import (
    CLIENT_USAGES,
    SERVER_USAGES,
    WORKLOAD_USAGES,
    PublicKey,
    build_leaf,
    build_root,
)
from ambientmesh.identity.spiffe import Identity, NodeIdentity, check_trust_domain

log = logging.getLogger(__name__)

CONTROL_PLANE_DNS_NAMES = ("istiod.istio-system.svc", "localhost")


@dataclass(frozen=True, slots=True, kw_only=True)
class CaSettings:
    """Policy of the CA. Defaults follow Istio: 24 h workload certificates, 90 days at most,
    a self-signed root of 10 years."""

    trust_domain: str = "cluster.local"
    workload_ttl: timedelta = timedelta(hours=24)
    min_workload_ttl: timedelta = timedelta(minutes=1)
    max_workload_ttl: timedelta = timedelta(days=90)
    node_ttl: timedelta = timedelta(days=30)
    server_ttl: timedelta = timedelta(days=365)  # re-issued at every control-plane start
    root_ttl: timedelta = timedelta(days=3650)

    def __post_init__(self) -> None:
        check_trust_domain(self.trust_domain)
        if not self.min_workload_ttl <= self.workload_ttl <= self.max_workload_ttl:
            raise IdentityError(
                f"workload certificate lifetime {self.workload_ttl} is outside "
                f"[{self.min_workload_ttl}, {self.max_workload_ttl}]"
            )
        if self.min_workload_ttl < timedelta(minutes=1):
            raise IdentityError("workload certificates cannot be shorter than 1 minute")


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateSummary:
    subject: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateSummary:
        return cls(
            subject=cert.subject.rfc4514_string(),
            fingerprint_sha256=fingerprint_sha256(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "fingerprintSHA256": self.fingerprint_sha256,
            "notBefore": _iso(self.not_before),
            "notAfter": _iso(self.not_after),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CaStatus:
    """What ``ambientmesh ca status`` shows."""

    trust_domain: str
    source: str
    root: CertificateSummary
    signer: CertificateSummary
    bundle: tuple[CertificateSummary, ...] = field(default=())
    certificates_issued: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "trustDomain": self.trust_domain,
            "source": self.source,
            "root": self.root.to_json(),
            "signingCertificate": self.signer.to_json(),
            "trustBundle": [cert.to_json() for cert in self.bundle],
            "certificatesIssued": self.certificates_issued,
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class CertificateAuthority:
    """Signs leaf certificates with one SPIFFE URI SAN; counts what it signed.

    Authorization (who may ask for which identity) is the caller's job: this class checks
    that a CSR is well formed and names exactly the identity it was told to sign.
    """

    def __init__(
        self,
        material: CaMaterial,
        *,
        settings: CaSettings | None = None,
        clock: Clock | None = None,
        counter: IssuedCounter | None = None,
    ) -> None:
        self.settings = settings or CaSettings()
        self.material = material
        self._clock = clock or SystemClock()
        self._counter = counter or IssuedCounter(None)
        self._above_leaf = [
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for cert in material.chain_above_leaf
        ]
        self._intermediates_pem = certs_to_pem(material.chain_above_leaf[:-1])
        self.roots_pem: bytes = certs_to_pem(material.bundle)

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        settings: CaSettings | None = None,
        clock: Clock | None = None,
        plugin_dir: Path | None = None,
    ) -> CertificateAuthority:
        """The cluster's CA: a plug-in CA from ``plugin_dir`` (default ``<state>/cacerts`` if
        that exists), else the self-signed root in ``<state>/ca``, created on first start."""
        settings = settings or CaSettings()
        clock = clock or SystemClock()
        ca_dir = state_dir / "ca"
        plugin_dir = plugin_dir or (state_dir / "cacerts")
        if plugin_dir.is_dir():
            material = ca_files.load_plugin(plugin_dir, now=clock.now())
            ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        else:
            material = ca_files.load_or_create_root(
                ca_dir,
                trust_domain=settings.trust_domain,
                now=clock.now(),
                lifetime=settings.root_ttl,
            )
        counter = IssuedCounter(ca_dir / ca_files.ISSUED, clock=clock)
        return cls(material, settings=settings, clock=clock, counter=counter)

    @classmethod
    def open_in_memory(
        cls, *, settings: CaSettings | None = None, clock: Clock | None = None
    ) -> CertificateAuthority:
        """A CA with a fresh self-signed root that is never written anywhere (tests, benchmarks)."""
        settings = settings or CaSettings()
        clock = clock or SystemClock()
        now = clock.now().replace(microsecond=0)
        key = generate_key()
        root = build_root(
            key=key,
            trust_domain=settings.trust_domain,
            not_before=now,
            not_after=now + settings.root_ttl,
        )
        return cls(ca_files.self_signed(root, key), settings=settings, clock=clock)

    @property
    def trust_domain(self) -> str:
        return self.settings.trust_domain

    def sign_workload_csr(
        self, csr_pem: str | bytes, *, identity: Identity, ttl: timedelta | None = None
    ) -> list[str]:
        """Sign a CSR for ``identity``; returns PEM certificates leaf first, root last.

        ``ttl`` None or zero means the default. Raises IdentityError when the CSR is malformed
        or names anything but ``identity``, or when the identity or lifetime is not allowed.
        """
        if identity.trust_domain != self.trust_domain:
            raise IdentityError(
                f"identity {identity} is outside this CA's trust domain {self.trust_domain!r}"
            )
        checked = check_csr(csr_pem)
        if checked.uri != str(identity):
            raise IdentityError(f"CSR names {checked.uri!r} but the request is for {identity}")
        leaf = self._sign(
            checked.public_key, [str(identity)], self._workload_ttl(ttl), WORKLOAD_USAGES
        )
        return [leaf.public_bytes(serialization.Encoding.PEM).decode("ascii"), *self._above_leaf]

    def _workload_ttl(self, requested: timedelta | None) -> timedelta:
        if requested is None or requested <= timedelta(0):
            return self.settings.workload_ttl
        if requested < self.settings.min_workload_ttl:
            raise IdentityError(
                f"requested lifetime {requested} is below the minimum "
                f"{self.settings.min_workload_ttl}"
            )
        if requested > self.settings.max_workload_ttl:
            raise IdentityError(
                f"requested lifetime {requested} exceeds the maximum "
                f"{self.settings.max_workload_ttl}"
            )
        return requested

    def _sign(
        self,
        public_key: PublicKey,
        uris: Sequence[str],
        ttl: timedelta,
        usages: Sequence[x509.ObjectIdentifier],
        dns_names: Sequence[str] = (),
    ) -> x509.Certificate:
        # Second granularity: X.509 times have no fractions, so truncate rather than round up.
        now = self._clock.now().replace(microsecond=0)
        signer = self.material.signer.cert
        check_validity(signer, now, what="the CA's signing certificate")
        # A leaf never outlives its issuer (it would fail verification from then on anyway).
        not_after = min(now + ttl, signer.not_valid_after_utc)
        leaf = build_leaf(
            self.material.signer,
            public_key=public_key,
            not_before=now,
            not_after=not_after,
            uris=uris,
            dns_names=dns_names,
            usages=usages,
        )
        self._counter.increment()
        return leaf

    def issue_node_credential(self, node: str) -> NodeCredential:
        """A client credential bound to ``node``: ``spiffe://<td>/ambientmesh/node/<node>``."""
        identity = NodeIdentity(trust_domain=self.trust_domain, node=node)
        key = generate_key()
        leaf = self._sign(key.public_key(), [str(identity)], self.settings.node_ttl, CLIENT_USAGES)
        return NodeCredential(
            identity=identity,
            chain_pem=certs_to_pem([leaf]) + self._intermediates_pem,
            key_pem=key_to_pem(key),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    def write_node_credential(self, node: str, directory: Path) -> CredentialFiles:
        """Mint a node credential and write chain, key (0600) and trust bundle to ``directory``."""
        credential = self.issue_node_credential(node)
        files = CredentialFiles(directory=directory)
        files.write(
            chain_pem=credential.chain_pem, key_pem=credential.key_pem, roots_pem=self.roots_pem
        )
        log.info("wrote node credential for %s to %s", credential.identity, directory)
        return files

    def issue_server_credential(
        self, dns_names: Sequence[str] = CONTROL_PLANE_DNS_NAMES
    ) -> tuple[bytes, bytes]:
        """The control plane's serving certificate (DNS SANs only): (chain_pem, key_pem)."""
        key = generate_key()
        leaf = self._sign(
            key.public_key(), [], self.settings.server_ttl, SERVER_USAGES, dns_names=dns_names
        )
        return certs_to_pem([leaf]) + self._intermediates_pem, key_to_pem(key)

    def issue_workload_credential(
        self, identity: Identity, ttl: timedelta | None = None
    ) -> Credential:
        """Sign a fresh key for ``identity`` in-process (tests, benchmarks, local tools)."""
        key = generate_key()
        chain = self.sign_workload_csr(build_csr(identity, key), identity=identity, ttl=ttl)
        return Credential.from_pem("".join(chain[:-1]).encode("ascii"), key_to_pem(key))

    def flush(self) -> None:
        """Persist the issued-certificate count now (call at shutdown)."""
        self._counter.flush()

    def status(self) -> CaStatus:
        self._counter.flush()
        return CaStatus(
            trust_domain=self.trust_domain,
            source=self.material.source,
            root=CertificateSummary.of(self.material.root),
            signer=CertificateSummary.of(self.material.signer.cert),
            bundle=tuple(CertificateSummary.of(cert) for cert in self.material.bundle),
            certificates_issued=self._counter.value,
        )
