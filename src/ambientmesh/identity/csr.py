"""Certificate signing requests: building one for a workload, and checking one before signing."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from ambientmesh.errors import IdentityError
from ambientmesh.identity.spiffe import Identity, NodeIdentity

MAX_CSR_BYTES = 16 * 1024  # a P-256 CSR with one URI SAN is ~500 bytes


def build_csr(identity: Identity | NodeIdentity, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PEM CSR carrying exactly one URI SAN, ``identity``, and no subject (as ztunnel's)."""
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(str(identity))])
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(san, critical=True)
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedCsr:
    """A CSR that passed :func:`check_csr`: its one SPIFFE URI and its P-256 public key."""

    uri: str
    public_key: ec.EllipticCurvePublicKey


def check_csr(pem: str | bytes) -> CheckedCsr:
    """Parse and check a CSR: PEM, valid self-signature, ECDSA P-256 key, exactly one SAN,
    which is a URI. The caller compares the URI with the identity it authorized."""
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_CSR_BYTES:
        raise IdentityError(f"CSR is {len(data)} bytes; at most {MAX_CSR_BYTES} are accepted")
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
        raise IdentityError("CSR is not PEM: expected a 'CERTIFICATE REQUEST' block")
    try:
        request = x509.load_pem_x509_csr(data)
    except ValueError as error:
        raise IdentityError(f"CSR cannot be parsed: {error}") from None
    public_key = _p256_key(request)
    if not request.is_signature_valid:
        raise IdentityError("CSR signature does not verify with the CSR's own public key")
    return CheckedCsr(uri=_single_uri(request), public_key=public_key)


def _p256_key(request: x509.CertificateSigningRequest) -> ec.EllipticCurvePublicKey:
    try:
        key = request.public_key()
    except (ValueError, TypeError) as error:
        raise IdentityError(f"CSR public key cannot be read: {error}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise IdentityError(f"CSR key is {_key_kind(key)}; only ECDSA P-256 keys are signed")
    if not isinstance(key.curve, ec.SECP256R1):
        raise IdentityError(f"CSR key is on curve {key.curve.name}; only P-256 is signed")
    return key


def _key_kind(key: object) -> str:
    name = type(key).__name__.removesuffix("PublicKey").removeprefix("_")
    return f"a {name} key" if name else "an unknown key"


def _single_uri(request: x509.CertificateSigningRequest) -> str:
    try:
        extension = request.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        raise IdentityError(
            "CSR has no subject alternative name; one SPIFFE URI is required"
        ) from None
    except ValueError as error:  # a malformed extension is only decoded on access
        raise IdentityError(f"CSR extensions cannot be parsed: {error}") from None
    assert isinstance(extension.value, x509.SubjectAlternativeName)
    names = list(extension.value)
    uris = [name.value for name in names if isinstance(name, x509.UniformResourceIdentifier)]
    if len(names) != 1 or len(uris) != 1:
        listed = ", ".join(_describe_name(name) for name in names)
        raise IdentityError(f"CSR must carry exactly one SAN, a SPIFFE URI; it has: {listed}")
    return str(uris[0])


def _describe_name(name: x509.GeneralName) -> str:
    kind = {
        x509.UniformResourceIdentifier: "URI",
        x509.DNSName: "DNS",
        x509.IPAddress: "IP",
        x509.RFC822Name: "email",
    }.get(type(name), type(name).__name__)
    return f"{kind}:{name.value}"
