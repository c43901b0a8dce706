"""A throwaway PKI for tests of every tier: a root (and optional intermediate) that issues
workload, node and deliberately broken certificates on demand."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from ambientmesh.identity.certs import certs_to_pem, generate_key, key_to_pem
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.issuance import (
    CLIENT_USAGES,
    WORKLOAD_USAGES,
    Issuer,
    build_intermediate,
    build_leaf,
    build_root,
)
from ambientmesh.identity.spiffe import Identity, NodeIdentity

DEFAULT_TTL = timedelta(hours=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RawCredential:
    """A chain and key with no identity promised: for certificates the mesh must refuse."""

    chain_pem: bytes
    key_pem: bytes


class TestPKI:
    """A root CA (and optionally an intermediate) living only in memory.

    Certificates use real wall-clock time, because OpenSSL checks validity against it.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, trust_domain: str = "cluster.local", *, intermediate: bool = False) -> None:
        self.trust_domain = trust_domain
        now = datetime.now(UTC)
        root_key = generate_key()
        self.root_cert = build_root(
            key=root_key,
            trust_domain=trust_domain,
            not_before=now - timedelta(hours=1),
            not_after=now + timedelta(days=3650),
            # A unique name, so two test roots never look alike to OpenSSL's issuer lookup.
            common_name=f"test root CA {secrets.token_hex(4)} for {trust_domain}",
        )
        self.root = Issuer(cert=self.root_cert, key=root_key)
        self.intermediates: tuple[x509.Certificate, ...] = ()
        self.issuer = self.root
        if intermediate:
            key = generate_key()
            cert = build_intermediate(
                self.root,
                public_key=key.public_key(),
                trust_domain=trust_domain,
                not_before=now - timedelta(hours=1),
                not_after=now + timedelta(days=365),
                common_name=f"test intermediate CA {secrets.token_hex(4)} for {trust_domain}",
            )
            self.intermediates = (cert,)
            self.issuer = Issuer(cert=cert, key=key)
        self.roots_pem: bytes = certs_to_pem([self.root_cert])

    def identity(self, name: Identity | str) -> Identity:
        """``"ns/sa"`` (in this PKI's trust domain) or a full SPIFFE URI, as an Identity."""
        if isinstance(name, Identity):
            return name
        if name.startswith("spiffe://"):
            return Identity.parse(name)
        namespace, _, service_account = name.partition("/")
        return Identity(
            trust_domain=self.trust_domain, namespace=namespace, service_account=service_account
        )

    def issue(
        self,
        identity: Identity | str,
        *,
        ttl: timedelta = DEFAULT_TTL,
        not_before: datetime | None = None,
    ) -> Credential:
        """A workload credential for ``identity`` (any trust domain: tests need foreign ones)."""
        wanted = self.identity(identity)
        raw, start, end = self._issue(uris=[str(wanted)], ttl=ttl, not_before=not_before)
        return Credential(
            identity=wanted,
            chain_pem=raw.chain_pem,
            key_pem=raw.key_pem,
            not_before=start,
            not_after=end,
        )

    def issue_node_credential(self, node: str, *, ttl: timedelta = DEFAULT_TTL) -> NodeCredential:
        identity = NodeIdentity(trust_domain=self.trust_domain, node=node)
        raw, start, end = self._issue(uris=[str(identity)], ttl=ttl, usages=CLIENT_USAGES)
        return NodeCredential(
            identity=identity,
            chain_pem=raw.chain_pem,
            key_pem=raw.key_pem,
            not_before=start,
            not_after=end,
        )

    def issue_expired(self, identity: Identity | str) -> Credential:
        now = datetime.now(UTC)
        return self.issue(identity, not_before=now - timedelta(hours=2), ttl=timedelta(hours=1))

    def issue_not_yet_valid(self, identity: Identity | str) -> Credential:
        return self.issue(identity, not_before=datetime.now(UTC) + timedelta(hours=1))

    def issue_without_uri_san(self, *, dns_names: Sequence[str] = ()) -> RawCredential:
        """A valid chain whose leaf has no URI SAN (only the DNS names given, if any)."""
        return self.issue_with_sans(uris=(), dns_names=dns_names)

    def issue_with_sans(
        self,
        *,
        uris: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ttl: timedelta = DEFAULT_TTL,
    ) -> RawCredential:
        """A valid chain whose leaf carries exactly these SANs: several SPIFFE IDs, non-SPIFFE
        URIs, DNS names."""
        raw, _, _ = self._issue(uris=uris, dns_names=dns_names, ttl=ttl)
        return raw

    def write_plugin_layout(self, directory: Path) -> None:
        """Write the CA in Istio's plug-in layout (ca-cert, ca-key, root-cert, cert-chain .pem)."""
        directory.mkdir(parents=True, exist_ok=True)
        signing_chain = [*self.intermediates, self.root_cert]  # signing CA first, root last
        (directory / "ca-cert.pem").write_bytes(certs_to_pem([self.issuer.cert]))
        (directory / "ca-key.pem").write_bytes(key_to_pem(self.issuer.key))
        (directory / "root-cert.pem").write_bytes(self.roots_pem)
        (directory / "cert-chain.pem").write_bytes(certs_to_pem(signing_chain))
        (directory / "ca-key.pem").chmod(0o600)

    def _issue(
        self,
        *,
        uris: Sequence[str],
        ttl: timedelta,
        not_before: datetime | None = None,
        dns_names: Sequence[str] = (),
        usages: Sequence[x509.ObjectIdentifier] = WORKLOAD_USAGES,
    ) -> tuple[RawCredential, datetime, datetime]:
        # Validity is second-granular: truncating makes "now" already valid.
        start = (not_before or datetime.now(UTC)).replace(microsecond=0)
        end = start + ttl
        key = generate_key()
        leaf = build_leaf(
            self.issuer,
            public_key=key.public_key(),
            not_before=start,
            not_after=end,
            uris=uris,
            dns_names=dns_names,
            usages=usages,
        )
        chain = certs_to_pem([leaf, *self.intermediates])
        return RawCredential(chain_pem=chain, key_pem=key_to_pem(key)), start, end
