"""Mutual-TLS contexts for the mesh (TLS 1.3, ALPN h2, no SNI) and explicit SPIFFE peer checks.

Python's hostname check knows DNS names and IP addresses, not SPIFFE URIs, so client
contexts turn it off and callers check the peer with :func:`verify_server_identity` or
:func:`verify_client_identity` right after the handshake. Use the client context with
``server_hostname=None`` (``""`` with asyncio, which otherwise defaults to the host) so that
no SNI is sent, as Istio's ztunnel does.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from cryptography import x509

from ambientmesh.errors import IdentityError
from ambientmesh.identity.certs import spiffe_uris
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.spiffe import Identity

__all__ = [
    "ALPN_H2",
    "CertifiedKey",
    "Credential",
    "NodeCredential",
    "RotatingServerContext",
    "client_context",
    "peer_identity",
    "server_context",
    "verify_client_identity",
    "verify_server_identity",
]

ALPN_H2 = "h2"

SslConnection = ssl.SSLObject | ssl.SSLSocket


class CertifiedKey(Protocol):
    """Anything with a PEM chain (leaf first) and its PEM key: a Credential or NodeCredential."""

    @property
    def chain_pem(self) -> bytes: ...

    @property
    def key_pem(self) -> bytes: ...


def server_context(credential: CertifiedKey, roots_pem: bytes) -> ssl.SSLContext:
    """A server context: TLS 1.3 only, ALPN h2, client certificate required, no tickets."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(context, credential, roots_pem)
    # TLS 1.3 tickets would allow resumption without presenting a certificate again;
    # ztunnel disables resumption, and so do we.
    context.num_tickets = 0
    return context


class RotatingServerContext:
    """A listening context whose certificate can be replaced for the handshakes to come.

    Give ``context`` to the listener once; ``update`` after each rotation. OpenSSL's
    server-name callback runs on every ClientHello (with or without SNI) and switches the
    connection to the newest context before the certificate is chosen.
    """

    def __init__(self, credential: CertifiedKey, roots_pem: bytes) -> None:
        self._current = server_context(credential, roots_pem)
        self.context = server_context(credential, roots_pem)
        self.context.sni_callback = self._switch

    def update(self, credential: CertifiedKey, roots_pem: bytes) -> None:
        self._current = server_context(credential, roots_pem)

    def _switch(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        connection.context = self._current


def client_context(credential: CertifiedKey, roots_pem: bytes) -> ssl.SSLContext:
    """A client context: TLS 1.3 only, ALPN h2, chain verified, SPIFFE checked by the caller."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # SPIFFE URIs are checked by verify_server_identity
    _configure(context, credential, roots_pem)
    return context


def _configure(context: ssl.SSLContext, credential: CertifiedKey, roots_pem: bytes) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.verify_mode = ssl.CERT_REQUIRED
    # Strict RFC 5280 checks: CA flags, key identifiers, critical SANs on empty subjects.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    context.set_alpn_protocols([ALPN_H2])
    _load_roots(context, roots_pem)
    _load_chain(context, credential.chain_pem, credential.key_pem)


def _load_roots(context: ssl.SSLContext, roots_pem: bytes) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in roots_pem:
        raise IdentityError("trust bundle holds no PEM certificate")
    try:
        context.load_verify_locations(cadata=roots_pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as error:
        raise IdentityError(f"trust bundle is not valid PEM: {error}") from None


def _load_chain(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    """Load a chain and key from memory; ``ssl`` only reads files, so hand it an anonymous one."""
    data = chain_pem.rstrip(b"\n") + b"\n" + key_pem
    try:
        with _anonymous_file(data) as path:
            context.load_cert_chain(path)
    except ssl.SSLError as error:
        raise IdentityError(
            f"credential cannot be used: {error.reason or error} (is the key the leaf's?)"
        ) from None


@contextmanager
def _anonymous_file(data: bytes) -> Iterator[str]:
    """A memfd (never on disk, as it holds a private key) or, off Linux, a private temp file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("ambientmesh-credential", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="ambientmesh-") as directory:
        path = Path(directory) / "credential.pem"
        path.touch(mode=0o600)
        path.write_bytes(data)
        yield str(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _verified_leaf(connection: SslConnection | None) -> x509.Certificate:
    if connection is None:
        raise IdentityError("connection is not TLS: there is no peer certificate to check")
    if connection.context.verify_mode != ssl.CERT_REQUIRED:
        raise IdentityError("peer certificate was not verified (context does not require one)")
    der = connection.getpeercert(binary_form=True)
    if der is None:
        raise IdentityError("peer presented no certificate")
    return x509.load_der_x509_certificate(der)


def _peer_uris(connection: SslConnection | None) -> list[str]:
    uris = spiffe_uris(_verified_leaf(connection))
    if not uris:
        raise IdentityError("peer certificate has no SPIFFE URI SAN")
    return uris


def peer_identity(ssl_object: SslConnection | None) -> Identity:
    """The verified peer's workload identity; IdentityError if it has none or several."""
    uris = _peer_uris(ssl_object)
    if len(uris) > 1:
        raise IdentityError(f"peer certificate is ambiguous: it names several SPIFFE IDs {uris}")
    return Identity.parse(uris[0])


def verify_server_identity(
    ssl_object: SslConnection | None, expected: Collection[Identity]
) -> Identity:
    """Client side: one of the server's SPIFFE IDs must be in ``expected`` (Istio's
    IdentityVerifier); returns the one that matched."""
    uris = _peer_uris(ssl_object)
    for uri in uris:
        try:
            identity = Identity.parse(uri)
        except IdentityError:
            continue
        if identity in expected:
            return identity
    wanted = ", ".join(sorted(str(identity) for identity in expected)) or "nothing (empty set)"
    raise IdentityError(f"server presented {', '.join(uris)}; expected one of: {wanted}")


def verify_client_identity(ssl_object: SslConnection | None, trust_domain: str) -> Identity:
    """Server side: the client must be a workload identity of our trust domain (Istio's
    TrustDomainVerifier); which workload is authorization's business."""
    identity = peer_identity(ssl_object)
    if identity.trust_domain != trust_domain:
        raise IdentityError(
            f"client identity {identity} is from trust domain {identity.trust_domain!r}, "
            f"not ours ({trust_domain!r})"
        )
    return identity
