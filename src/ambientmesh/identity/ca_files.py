"""The CA on disk: the self-signed root in the state directory, Istio's plug-in layout, the
issued-certificate counter and node credential files, all written atomically."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import IdentityError
from ambientmesh.identity.certs import (
    PrivateKey,
    certs_to_pem,
    check_validity,
    describe,
    generate_key,
    is_ca,
    key_to_pem,
    load_certificates,
    load_private_key,
    same_public_key,
    verify_chain,
)
from ambientmesh.identity.issuance import Issuer, build_root

log = logging.getLogger(__name__)

# Istio's plug-in CA files (the `cacerts` secret).
PLUGIN_FILES = ("ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem")
ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"
ISSUED = "issued"
# What a node (or a workload) gets on disk: Istio's names for the same files.
CHAIN_FILE, KEY_FILE, ROOTS_FILE = "cert-chain.pem", "key.pem", "root-cert.pem"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaMaterial:
    """A signing CA: its certificate and key, the certificates up to its root, the bundle."""

    signer: Issuer
    intermediates: tuple[x509.Certificate, ...]  # between signer and root, nearest first
    root: x509.Certificate  # the root that anchors the signer
    bundle: tuple[x509.Certificate, ...]  # every trusted root (two during a rotation)
    source: str  # "self-signed" or "plug-in"

    @property
    def chain_above_leaf(self) -> tuple[x509.Certificate, ...]:
        """What follows a leaf in a response: signer, intermediates, root (once)."""
        if self.signer.cert == self.root:
            return (self.root,)
        return (self.signer.cert, *self.intermediates, self.root)


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never half.

    The temporary file is created with ``mode`` from the start, so a key is never readable
    by others even for a moment. ``durable`` adds the fsyncs that make it survive power loss.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(temporary, flags, mode)
    try:
        # Before any byte is written: O_CREAT's mode is filtered by the umask, and a stale
        # temporary file from a crash keeps whatever mode it had.
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if durable:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise IdentityError(f"cannot read {path}: {error.strerror}") from None


def load_or_create_root(
    directory: Path, *, trust_domain: str, now: datetime, lifetime: timedelta
) -> CaMaterial:
    """The self-signed root kept in ``directory`` (created on first start, key mode 0600)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = directory / ROOT_CERT, directory / ROOT_KEY
    if not cert_path.exists():
        # A key without a certificate means a crash between the two writes: nothing was
        # ever signed with it, so starting over is safe.
        now = now.replace(microsecond=0)
        new_key = generate_key()
        cert = build_root(
            key=new_key, trust_domain=trust_domain, not_before=now, not_after=now + lifetime
        )
        write_atomically(key_path, key_to_pem(new_key), mode=0o600)
        write_atomically(cert_path, certs_to_pem([cert]))
        log.info("created a self-signed root CA for %s in %s", trust_domain, directory)
        return self_signed(cert, new_key)
    if not key_path.exists():
        raise IdentityError(
            f"{cert_path} exists but its key {key_path} does not; restore the key or remove "
            "the certificate (which makes a new root that no existing workload trusts)"
        )
    certs = load_certificates(_read(cert_path), what=str(cert_path))
    key = load_private_key(_read(key_path), what=str(key_path))
    if len(certs) != 1 or not same_public_key(certs[0], key):
        raise IdentityError(f"{key_path} is not the key of the root in {cert_path}")
    check_validity(certs[0], now, what=f"root CA in {cert_path}")
    return self_signed(certs[0], key)


def self_signed(cert: x509.Certificate, key: PrivateKey) -> CaMaterial:
    return CaMaterial(
        signer=Issuer(cert=cert, key=key),
        intermediates=(),
        root=cert,
        bundle=(cert,),
        source="self-signed",
    )


def load_plugin(directory: Path, *, now: datetime) -> CaMaterial:
    """A user-supplied CA in Istio's plug-in layout, checked to belong together:
    the key is ca-cert's, cert-chain starts at ca-cert and leads to a root of root-cert."""
    missing = [name for name in PLUGIN_FILES if not (directory / name).exists()]
    if missing:
        raise IdentityError(f"plug-in CA directory {directory} lacks {', '.join(missing)}")
    signers = load_certificates(_read(directory / "ca-cert.pem"), what="ca-cert.pem")
    key = load_private_key(_read(directory / "ca-key.pem"), what="ca-key.pem")
    bundle = load_certificates(_read(directory / "root-cert.pem"), what="root-cert.pem")
    chain = load_certificates(_read(directory / "cert-chain.pem"), what="cert-chain.pem")
    if len(signers) != 1:
        raise IdentityError(f"ca-cert.pem must hold one certificate, not {len(signers)}")
    signer = signers[0]
    if not same_public_key(signer, key):
        raise IdentityError("ca-key.pem is not the key of the certificate in ca-cert.pem")
    if not is_ca(signer):
        raise IdentityError(f"ca-cert.pem ({describe(signer)}) is not a CA certificate")
    if chain[0] != signer:
        raise IdentityError("cert-chain.pem must start with the certificate of ca-cert.pem")
    try:
        root = verify_chain(chain, bundle, at=now)
    except IdentityError as error:
        raise IdentityError(f"plug-in CA in {directory}: {error.message}") from None
    between = tuple(cert for cert in chain[1:] if cert != root)
    return CaMaterial(
        signer=Issuer(cert=signer, key=key),
        intermediates=between,
        root=root,
        bundle=tuple(bundle),
        source="plug-in",
    )


class IssuedCounter:
    """How many certificates the CA has signed, kept across restarts (for ``ca status``).

    Written at most once per ``interval`` seconds (and on ``flush``): a file replacement
    costs more than signing a certificate, and a statistic may lose a second on a crash.
    """

    def __init__(self, path: Path | None, *, clock: Clock | None = None, interval: float = 1.0):
        self._path = path
        self._clock = clock or SystemClock()
        self._interval = interval
        self._written_at = -interval
        self._dirty = False
        self.value = self._load()

    def _load(self) -> int:
        if self._path is None or not self._path.exists():
            return 0
        try:
            return max(0, int(self._path.read_text().strip()))
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable issued-certificate count in %s: %s", self._path, error)
            return 0

    def increment(self) -> int:
        self.value += 1
        self._dirty = True
        if self._clock.monotonic() - self._written_at >= self._interval:
            self.flush()
        return self.value

    def flush(self) -> None:
        if self._path is None or not self._dirty:
            return
        write_atomically(self._path, f"{self.value}\n".encode(), durable=False)
        self._written_at = self._clock.monotonic()
        self._dirty = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialFiles:
    """Where a credential lives on disk: chain (leaf first), key (0600) and trust bundle."""

    directory: Path

    @property
    def chain(self) -> Path:
        return self.directory / CHAIN_FILE

    @property
    def key(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def roots(self) -> Path:
        return self.directory / ROOTS_FILE

    def write(self, *, chain_pem: bytes, key_pem: bytes, roots_pem: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomically(self.key, key_pem, mode=0o600)
        write_atomically(self.chain, chain_pem)
        write_atomically(self.roots, roots_pem)

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(chain_pem, key_pem, roots_pem)."""
        return _read(self.chain), _read(self.key), _read(self.roots)
