"""`:authority` parsing follows ztunnel's HboneAddress: socket address first, then host:port."""

from __future__ import annotations

import ipaddress

import pytest

from ambientmesh.protocol import Authority, InvalidAuthority, parse_authority


@pytest.mark.parametrize(
    ("text", "host", "port", "is_ip"),
    [
        ("10.244.1.10:9080", "10.244.1.10", 9080, True),
        ("[fd00::5]:80", "fd00::5", 80, True),
        ("[::1]:15008", "::1", 15008, True),
        (
            "reviews.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local",
            9080,
            False,
        ),
        ("localhost:1", "localhost", 1, False),
        ("my_svc.ns:65535", "my_svc.ns", 65535, False),
    ],
)
def test_accepts_ip_v6_and_host_forms(text: str, host: str, port: int, is_ip: bool) -> None:
    authority = parse_authority(text)
    assert (authority.host, authority.port, authority.ip is not None) == (host, port, is_ip)
    assert str(authority) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10.0.0.1",  # missing port: ztunnel rejects it
        "host",
        "host:",
        "host:http",
        "host:0",
        "host:65536",
        "::1:80",  # IPv6 must be bracketed
        "[::1]",
        "[::1]80",
        "[not-v6]:80",
        "[1.2.3.4]:80",
        "bad host:80",
        "-leading.example:80",
        "a..b:80",
        "exämple.com:80",
        "host:+80",
        "host:8080a",
    ],
)
def test_rejects_unparseable_authorities(text: str) -> None:
    with pytest.raises(InvalidAuthority):
        parse_authority(text)


def test_authority_of_ip_formats_v6_with_brackets() -> None:
    assert str(Authority.of("fd00::1", 80)) == "[fd00::1]:80"
    assert Authority.of(ipaddress.ip_address("10.0.0.1"), 8080).ip == ipaddress.ip_address(
        "10.0.0.1"
    )
