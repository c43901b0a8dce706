"""Reading certificates and keys: PEM parsing, SPIFFE SANs, fingerprints and chain checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID

from ambientmesh.errors import IdentityError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""Key types a CA may sign with (Istio plug-in CAs are often RSA); workload keys are P-256."""

_PEM_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, the only leaf key type the mesh uses (as Istio's ztunnel)."""
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certs_to_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def load_certificates(pem: bytes | str, *, what: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle; IdentityError names ``what`` if there is none."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    if _PEM_CERT_MARKER not in data:
        raise IdentityError(f"{what} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise IdentityError(f"{what} is not valid PEM certificate data: {error}") from None


def load_private_key(pem: bytes, *, what: str) -> PrivateKey:
    """An unencrypted PEM private key of a type a CA or workload may hold."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise IdentityError(f"{what} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise IdentityError(f"{what} is a {type(key).__name__}; only ECDSA and RSA keys are used")
    return key


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    return bool(cert.public_key() == key.public_key())


def uri_sans(cert: x509.Certificate) -> list[str]:
    """The certificate's URI subject alternative names, in order."""
    try:
        sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    assert isinstance(sans, x509.SubjectAlternativeName)
    return sans.get_values_for_type(x509.UniformResourceIdentifier)


def spiffe_uris(cert: x509.Certificate) -> list[str]:
    return [uri for uri in uri_sans(cert) if uri.startswith("spiffe://")]


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Colon-separated uppercase hex, the way ``openssl x509 -fingerprint -sha256`` prints it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def describe(cert: x509.Certificate) -> str:
    """A short name for messages: the SPIFFE ID if there is one, else the subject."""
    uris = spiffe_uris(cert)
    return uris[0] if uris else (cert.subject.rfc4514_string() or "<empty subject>")


def check_validity(cert: x509.Certificate, at: datetime, *, what: str) -> None:
    if at < cert.not_valid_before_utc:
        raise IdentityError(f"{what} is not valid until {cert.not_valid_before_utc.isoformat()}")
    if at > cert.not_valid_after_utc:
        raise IdentityError(f"{what} expired at {cert.not_valid_after_utc.isoformat()}")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True if ``issuer``'s key signed ``cert`` and the names link up."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def verify_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], *, at: datetime
) -> x509.Certificate:
    """Check that ``chain`` (leaf first, no root needed) leads to one of ``roots``.

    Every link must be signed by the next, every issuer must be a CA, and everything must be
    valid at ``at``. Returns the root that anchors the chain. This is the check we apply to
    certificates outside a TLS handshake (CA responses, plug-in files); handshakes are
    verified by OpenSSL itself.
    """
    if not chain:
        raise IdentityError("certificate chain is empty")
    for index, cert in enumerate(chain):
        check_validity(cert, at, what=f"certificate {index} ({describe(cert)}) of the chain")
        if index + 1 < len(chain):
            issuer = chain[index + 1]
            if not is_ca(issuer) or not issued_by(cert, issuer):
                raise IdentityError(
                    f"certificate {index} ({describe(cert)}) of the chain is not issued by the "
                    f"next one ({describe(issuer)})"
                )
    last = chain[-1]
    for root in roots:
        if root == last or (is_ca(root) and issued_by(last, root)):
            check_validity(root, at, what=f"root {describe(root)}")
            return root
    raise IdentityError(
        f"certificate chain of {describe(chain[0])} does not lead to a trusted root "
        f"(last issuer: {last.issuer.rfc4514_string() or '<empty>'})"
    )
