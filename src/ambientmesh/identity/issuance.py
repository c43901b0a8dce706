"""Building certificates: roots, intermediates and leaves with the extensions the mesh relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ambientmesh.identity.certs import PrivateKey

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

# Workloads are both TLS servers and clients (HBONE in both directions).
WORKLOAD_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
# Nodes only ever dial the control plane; the control plane only ever serves.
CLIENT_USAGES = (ExtendedKeyUsageOID.CLIENT_AUTH,)
SERVER_USAGES = (ExtendedKeyUsageOID.SERVER_AUTH,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """A CA certificate and its signing key."""

    cert: x509.Certificate
    key: PrivateKey


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage() -> x509.KeyUsage:
    # ECDSA leaves only sign (TLS 1.3 handshakes); nothing is encrypted to them.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_name(trust_domain: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_root(
    *,
    key: PrivateKey,
    trust_domain: str,
    not_before: datetime,
    not_after: datetime,
    common_name: str = "ambientmesh root CA",
) -> x509.Certificate:
    """A self-signed root CA certificate for ``key``."""
    name = _ca_name(trust_domain, common_name)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _issued(issuer: Issuer, public_key: PublicKey) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer.cert), critical=False)
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        public = issuer.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_intermediate(
    issuer: Issuer,
    *,
    public_key: PublicKey,
    trust_domain: str,
    not_before: datetime,
    not_after: datetime,
    common_name: str = "ambientmesh intermediate CA",
) -> x509.Certificate:
    """An intermediate CA that may sign leaves only (path length 0)."""
    builder = (
        _issued(issuer, public_key)
        .subject_name(_ca_name(trust_domain, common_name))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
    )
    return builder.sign(issuer.key, hashes.SHA256())


def build_leaf(
    issuer: Issuer,
    *,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
    uris: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    usages: Sequence[x509.ObjectIdentifier] = WORKLOAD_USAGES,
) -> x509.Certificate:
    """An end-entity certificate: empty subject, the given SANs (critical, RFC 5280 §4.2.1.6).

    Without any SAN the certificate gets a subject common name instead, so that tests can
    make certificates with no URI SAN at all.
    """
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri) for uri in uris]
    names += [x509.DNSName(name) for name in dns_names]
    builder = (
        _issued(issuer, public_key)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    )
    if names:
        builder = builder.subject_name(x509.Name([])).add_extension(
            x509.SubjectAlternativeName(names), critical=True
        )
    else:
        builder = builder.subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no-subject-alt-name")])
        )
    return builder.sign(issuer.key, hashes.SHA256())
