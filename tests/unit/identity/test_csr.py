from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ambientmesh.errors import IdentityError
from ambientmesh.identity.certs import generate_key
from ambientmesh.identity.csr import MAX_CSR_BYTES, build_csr, check_csr
from ambientmesh.identity.spiffe import Identity

IDENTITY = Identity.parse("spiffe://cluster.local/ns/default/sa/sleep")


def custom_csr(
    names: list[x509.GeneralName] | None,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | None = None,
) -> bytes:
    key = key or generate_key()
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def test_build_then_check_round_trips_the_identity_and_key() -> None:
    key = generate_key()
    checked = check_csr(build_csr(IDENTITY, key))
    assert checked.uri == str(IDENTITY)
    assert checked.public_key == key.public_key()


def test_accepts_str_as_grpc_delivers_it() -> None:
    assert check_csr(build_csr(IDENTITY, generate_key()).decode()).uri == str(IDENTITY)


@pytest.mark.parametrize(
    ("csr", "complaint"),
    [
        (b"hello", "CSR is not PEM"),
        (b"", "CSR is not PEM"),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "CSR cannot be parsed",
        ),
        (b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * MAX_CSR_BYTES, "at most"),
    ],
)
def test_garbage_is_refused(csr: bytes, complaint: str) -> None:
    with pytest.raises(IdentityError, match=complaint):
        check_csr(csr)


@pytest.mark.parametrize(
    ("key", "complaint"),
    [
        (rsa.generate_private_key(65537, 2048), "CSR key is a RSA key; only ECDSA P-256"),
        (ec.generate_private_key(ec.SECP384R1()), "curve secp384r1; only P-256"),
        (ed25519.Ed25519PrivateKey.generate(), "CSR key is a Ed25519 key"),
    ],
)
def test_other_key_types_are_refused(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    complaint: str,
) -> None:
    csr = custom_csr([x509.UniformResourceIdentifier(str(IDENTITY))], key)
    with pytest.raises(IdentityError, match=complaint):
        check_csr(csr)


def test_bad_signature_is_refused() -> None:
    request = x509.load_pem_x509_csr(build_csr(IDENTITY, generate_key()))
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature value
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(IdentityError, match="signature does not verify"):
        check_csr(tampered)


def test_csr_signed_by_another_key_than_it_carries_is_refused() -> None:
    """Same to-be-signed bytes, signature from another key: a CSR whose key the caller lacks."""
    original = x509.load_pem_x509_csr(build_csr(IDENTITY, generate_key()))
    forged = original
    while len(forged.signature) != len(original.signature) or forged == original:
        forged = x509.load_pem_x509_csr(build_csr(IDENTITY, generate_key()))
    mixed = original.public_bytes(serialization.Encoding.DER).replace(
        original.signature, forged.signature
    )
    pem = x509.load_der_x509_csr(mixed).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(IdentityError, match="signature does not verify"):
        check_csr(pem)


@pytest.mark.parametrize(
    ("names", "complaint"),
    [
        (None, "no subject alternative name"),
        (
            [x509.UniformResourceIdentifier(str(IDENTITY)), x509.DNSName("evil.example")],
            "has: URI:spiffe://cluster.local/ns/default/sa/sleep, DNS:evil.example",
        ),
        (
            [
                x509.UniformResourceIdentifier(str(IDENTITY)),
                x509.UniformResourceIdentifier("spiffe://cluster.local/ns/kube-system/sa/admin"),
            ],
            "exactly one SAN",
        ),
        ([x509.IPAddress(ipaddress.ip_address("10.0.0.1"))], "IP:10.0.0.1"),
        ([x509.DNSName("sleep.default.svc")], "DNS:sleep.default.svc"),
    ],
)
def test_san_must_be_exactly_one_uri(names: list[x509.GeneralName] | None, complaint: str) -> None:
    with pytest.raises(IdentityError, match=complaint):
        check_csr(custom_csr(names))
