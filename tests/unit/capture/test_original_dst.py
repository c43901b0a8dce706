"""Parsing the sockaddr that SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST return."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from ambientmesh.capture.original_dst import SocketAddr, parse_sockaddr_in, parse_sockaddr_in6
from ambientmesh.errors import InvalidInput


def test_ipv4_sockaddr() -> None:
    raw = (
        struct.pack("=H", socket.AF_INET)
        + struct.pack("!H", 8080)
        + bytes([10, 244, 1, 7])
        + bytes(8)
    )
    assert parse_sockaddr_in(raw) == SocketAddr(ip=ipaddress.IPv4Address("10.244.1.7"), port=8080)


def test_ipv6_sockaddr_and_its_text_form() -> None:
    address = ipaddress.IPv6Address("fd00::42")
    raw = (
        struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 443, 0) + address.packed + bytes(4)
    )
    parsed = parse_sockaddr_in6(raw)
    assert parsed == SocketAddr(ip=address, port=443)
    assert str(parsed) == "[fd00::42]:443"


def test_v4_mapped_ipv6_is_reported_as_ipv4() -> None:
    mapped = ipaddress.IPv6Address("::ffff:10.0.0.9")
    raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 80, 0) + mapped.packed + bytes(4)
    assert str(parse_sockaddr_in6(raw)) == "10.0.0.9:80"


@pytest.mark.parametrize(("parser", "size"), [(parse_sockaddr_in, 15), (parse_sockaddr_in6, 27)])
def test_short_buffers_are_refused(parser: object, size: int) -> None:
    with pytest.raises(InvalidInput, match="needs"):
        parser(bytes(size))  # type: ignore[operator]
