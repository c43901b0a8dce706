"""Addresses and CONNECT authorities (reference 1.5): parsing, canonical forms, errors."""

from __future__ import annotations

import ipaddress

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.ztunnel.model import (
    HostPort,
    NamespacedHostname,
    SocketAddr,
    parse_authority,
    parse_ip,
)

from .builders import pod


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.244.1.10:9080", SocketAddr.of("10.244.1.10", 9080)),
        ("[fd00::5]:80", SocketAddr.of("fd00::5", 80)),
        (
            "reviews.default.svc.cluster.local:9080",
            HostPort(hostname="reviews.default.svc.cluster.local", port=9080),
        ),
        ("Reviews.Default:80", HostPort(hostname="reviews.default", port=80)),
        ("[::ffff:10.0.0.1]:80", SocketAddr.of("10.0.0.1", 80)),
    ],
    ids=[
        "ipv4",
        "bracketed ipv6",
        "service host name",
        "host names are case-insensitive",
        "v4-mapped v6",
    ],
)
def test_parse_authority(text: str, expected: object) -> None:
    assert parse_authority(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("10.0.0.1", "no port"),
        ("reviews", "no port"),
        (":80", "no port"),
        ("10.0.0.1:0", "outside 1..65535"),
        ("10.0.0.1:65536", "outside 1..65535"),
        ("10.0.0.1:http", "not a number"),
        ("fd00::5:80", "neither"),
        ("a b:80", "neither"),
        ("host/path:80", "neither"),
    ],
)
def test_parse_authority_errors_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_authority(text)


def test_socket_addr_forms() -> None:
    assert str(SocketAddr.of("fd00::1", 15008)) == "[fd00::1]:15008"
    assert str(SocketAddr.parse("10.0.0.1:80")) == "10.0.0.1:80"
    with pytest.raises(InvalidInput, match="brackets"):
        SocketAddr.parse("[10.0.0.1]:80")
    with pytest.raises(InvalidInput, match="outside"):
        SocketAddr(ip=ipaddress.ip_address("10.0.0.1"), port=70000)
    with pytest.raises(InvalidInput, match="not an IP"):
        parse_ip("10.0.0")


def test_workload_identity_and_canonical_addresses() -> None:
    w = pod("sleep", "::ffff:10.0.0.1", ns="foo", sa="sleeper")
    assert str(w.identity) == "spiffe://cluster.local/ns/foo/sa/sleeper"
    assert w.addresses == (ipaddress.ip_address("10.0.0.1"),)
    assert hash(w) == hash(pod("sleep", "10.0.0.1", ns="foo", sa="sleeper"))


def test_namespaced_hostname_parse() -> None:
    assert str(NamespacedHostname.parse("ns/a.b")) == "ns/a.b"
    for bad in ("nohost", "/a", "ns/", "ns/a/b"):
        with pytest.raises(InvalidInput):
            NamespacedHostname.parse(bad)
