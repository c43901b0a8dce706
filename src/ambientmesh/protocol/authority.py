"""The HBONE target in ``:authority``: ``ip:port``, ``[v6]:port`` or ``host:port``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. Underscores
# appear in real service names (SRV-style), and ztunnel does not reject them, so we allow them.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_MAX_HOSTNAME = 253


class InvalidAuthority(InvalidInput):
    """An ``:authority`` that names no connectable target (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Authority:
    """Where a CONNECT asks to go. ``ip`` is set for address targets, None for host names."""

    host: str
    port: int
    ip: IPAddress | None = None

    @classmethod
    def of(cls, ip: str | IPAddress, port: int) -> Authority:
        address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        _check_port(str(port), port)
        return cls(host=str(address), port=port, ip=address)

    def __str__(self) -> str:
        if isinstance(self.ip, ipaddress.IPv6Address):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_authority(text: str) -> Authority:
    """Parse the way ztunnel does: the whole text as a socket address first, then as
    ``host:port``; a missing or bad port is an error."""
    if not text:
        raise InvalidAuthority(":authority is empty; expected ip:port, [ipv6]:port or host:port")
    if text.startswith("["):
        return _parse_bracketed(text)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise InvalidAuthority(f":authority {text!r} has no port; expected host:port")
    port = _check_port(text, _parse_port(text, port_text))
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return Authority(host=_check_hostname(text, host), port=port)
    return Authority(host=str(address), port=port, ip=address)


def _parse_bracketed(text: str) -> Authority:
    inside, sep, after = text[1:].partition("]")
    if not sep or not after.startswith(":"):
        raise InvalidAuthority(f":authority {text!r} is not of the form [ipv6]:port")
    try:
        address = ipaddress.IPv6Address(inside)
    except ValueError:
        raise InvalidAuthority(f":authority {text!r}: {inside!r} is not an IPv6 address") from None
    port = _check_port(text, _parse_port(text, after[1:]))
    return Authority(host=str(address), port=port, ip=address)


def _parse_port(text: str, port_text: str) -> int:
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise InvalidAuthority(f":authority {text!r} has no valid port (got {port_text!r})")
    return int(port_text)


def _check_port(text: str, port: int) -> int:
    if not 1 <= port <= 65535:
        raise InvalidAuthority(f":authority {text!r}: port {port} is outside 1-65535")
    return port


def _check_hostname(text: str, host: str) -> str:
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > _MAX_HOSTNAME or not name.isascii():
        raise InvalidAuthority(f":authority {text!r}: {host!r} is not a valid host name")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidAuthority(f":authority {text!r}: {host!r} is not a valid host name")
    return name
