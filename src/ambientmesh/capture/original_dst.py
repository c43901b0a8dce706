"""The destination a captured connection was headed for before nftables redirected it.

REDIRECT rewrites the destination to ztunnel's port; conntrack still knows the original one,
and the kernel hands it out through getsockopt(SO_ORIGINAL_DST) for IPv4 and
getsockopt(IP6T_SO_ORIGINAL_DST) for IPv6. Parsing the returned sockaddr is pure.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

from ambientmesh.capture.errors import NotRedirected
from ambientmesh.errors import InvalidInput

# <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>; both are 80.
SO_ORIGINAL_DST = 80
IP6T_SO_ORIGINAL_DST = 80
SOL_IP = getattr(socket, "SOL_IP", 0)
SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)
_SOCKADDR_IN = struct.Struct("!2xH4s8x")  # family (host order, skipped), port, address, padding
_SOCKADDR_IN6 = struct.Struct("!2xHI16sI")  # family, port, flow info, address, scope id


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketAddr:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if self.ip.version == 6 else f"{self.ip}:{self.port}"

    def as_tuple(self) -> tuple[str, int]:
        return str(self.ip), self.port


def parse_sockaddr_in(raw: bytes) -> SocketAddr:
    if len(raw) < _SOCKADDR_IN.size:
        raise InvalidInput(f"sockaddr_in needs {_SOCKADDR_IN.size} bytes, got {len(raw)}")
    port, address = _SOCKADDR_IN.unpack_from(raw)
    return SocketAddr(ip=ipaddress.IPv4Address(address), port=port)


def parse_sockaddr_in6(raw: bytes) -> SocketAddr:
    if len(raw) < _SOCKADDR_IN6.size:
        raise InvalidInput(f"sockaddr_in6 needs {_SOCKADDR_IN6.size} bytes, got {len(raw)}")
    port, _flow, address, _scope = _SOCKADDR_IN6.unpack_from(raw)
    ip = ipaddress.IPv6Address(address)
    # A dual-stack socket may report an IPv4 peer as ::ffff:a.b.c.d; say what it really is.
    return SocketAddr(ip=ip.ipv4_mapped or ip, port=port)


def original_dst(sock: socket.socket) -> SocketAddr:
    """The pre-redirect destination of an accepted, captured TCP connection."""
    try:
        if sock.family == socket.AF_INET or _is_v4_mapped(sock):
            return parse_sockaddr_in(sock.getsockopt(SOL_IP, SO_ORIGINAL_DST, _SOCKADDR_IN.size))
        return parse_sockaddr_in6(
            sock.getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST, _SOCKADDR_IN6.size)
        )
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise NotRedirected(
                f"connection from {_peer(sock)} has no conntrack original destination"
            ) from exc
        raise NotRedirected(
            f"cannot read the original destination of {_peer(sock)}: {exc.strerror}"
        ) from exc


def _is_v4_mapped(sock: socket.socket) -> bool:
    if sock.family != socket.AF_INET6:
        return False
    local = ipaddress.IPv6Address(sock.getsockname()[0].split("%", 1)[0])
    return local.ipv4_mapped is not None


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[:2])
    except OSError:
        return "an unknown peer"


def peer_address(sock: socket.socket) -> SocketAddr:
    """The peer of a connected socket; an IPv4 peer of a dual-stack listener comes back as IPv4."""
    return _address(sock.getpeername())


def local_address(sock: socket.socket) -> SocketAddr:
    return _address(sock.getsockname())


def _address(raw: tuple[str, int] | tuple[str, int, int, int]) -> SocketAddr:
    ip = ipaddress.ip_address(raw[0].split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return SocketAddr(ip=ip, port=raw[1])
