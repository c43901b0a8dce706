"""Socket options the data path needs, and the socket factory seam that tunnels connect through."""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Protocol

from ambientmesh.errors import InvalidInput

# Linux values; the socket module lacks some of them.
IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75
SO_MARK = getattr(socket, "SO_MARK", 36)
ZTUNNEL_MARK = 0x539  # 1337: every ztunnel socket in a pod namespace carries it (Istio CNI rules)
_LINGER_RESET = struct.pack("ii", 1, 0)

SocketAddress = tuple[str, int]


class SocketFactory(Protocol):
    """Makes the (unconnected, non-blocking) TCP socket a connection to ``destination`` uses.

    ztunnel's factory creates it inside a pod's network namespace, marks it and may bind a
    spoofed source address; tests pass their own.
    """

    def __call__(self, destination: SocketAddress) -> socket.socket: ...


def family_of(host: str) -> socket.AddressFamily:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"{host!r} is not an IP address") from None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def set_nodelay(sock: socket.socket) -> None:
    """Tunnels carry request/response traffic: never hold small writes back (Nagle)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_mark(sock: socket.socket, mark: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)


def set_transparent(sock: socket.socket) -> None:
    """Allow binding a non-local source address (the client's, for source-preserving upstreams)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_TRANSPARENT, 1)


def set_keepalive(
    sock: socket.socket, *, idle: int = 180, interval: int = 180, count: int = 9
) -> None:
    """TCP keepalive as ztunnel configures it on its connections."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)


def set_reset_on_close(sock: socket.socket) -> None:
    """SO_LINGER 0: closing sends RST instead of FIN (how a broken tunnel is reported)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSocketFactory:
    """The default factory: TCP_NODELAY, keepalive, and optionally SO_MARK and a source IP."""

    mark: int | None = None
    source_ip: str | None = None
    transparent: bool = False

    def __call__(self, destination: SocketAddress) -> socket.socket:
        sock = socket.socket(family_of(destination[0]), socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            set_nodelay(sock)
            set_keepalive(sock)
            if self.mark is not None:
                set_mark(sock, self.mark)
            if self.transparent:
                set_transparent(sock)
            if self.source_ip is not None:
                sock.bind((self.source_ip, 0))
        except BaseException:
            sock.close()
            raise
        return sock
