"""The sockets the API server listens on: a private unix socket, and optionally mTLS over TCP."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from ambientmesh.errors import InvalidInput, Unavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """PEM files for the mTLS listener: our certificate and key, and the CAs clients chain to."""

    cert: Path
    key: Path
    client_ca: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Listener:
    """A bound, listening socket and how clients reach it. ``path`` is set for unix sockets
    (the server removes the file when it stops)."""

    sock: socket.socket
    address: str
    tls: ssl.SSLContext | None = None
    path: Path | None = None
    inode: int | None = None

    def close(self) -> None:
        self.sock.close()


def bind_unix(path: Path) -> Listener:
    """A listening unix socket at ``path`` with mode 0600.

    The socket is bound under a temporary name, restricted, then renamed into place, so there
    is no moment at which the final path accepts connections from other users. A stale socket
    left by a crashed server is replaced; a live one is an error.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(temporary))
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
        sock.listen(1024)
    except OSError as error:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise Unavailable(f"cannot listen on unix socket {path}: {error.strerror}") from error
    return Listener(sock=sock, address=str(path), path=path, inode=path.stat().st_ino)


def _remove_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise InvalidInput(f"{path} exists and is not a socket; remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as error:
        if error.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise Unavailable(f"cannot check existing socket {path}: {error.strerror}") from error
        path.unlink(missing_ok=True)  # nobody listens: left behind by a crash
        return
    finally:
        probe.close()
    raise Unavailable(f"an API server is already listening on {path}")


def bind_tcp(host: str, port: int, tls: ssl.SSLContext) -> Listener:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as error:
        raise Unavailable(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    bound_host, bound_port = sock.getsockname()[:2]
    where = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
    return Listener(sock=sock, address=where, tls=tls)


def server_tls_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+ server context that requires a client certificate chaining to ``client_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as error:
        raise InvalidInput(
            f"cannot load the server certificate {files.cert} and key {files.key}: {error}"
        ) from error
    try:
        context.load_verify_locations(cafile=files.client_ca)
    except (OSError, ssl.SSLError) as error:
        raise InvalidInput(
            f"cannot load the client CA bundle {files.client_ca}: {error}"
        ) from error
    return context
