"""Shared value rules: durations, ports, names, regexes, addresses."""

from __future__ import annotations

import pytest

from ambientmesh.resources import common


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("10s", 10.0),
        ("100ms", 0.1),
        ("1h2m3s", 3723.0),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("300us", 0.0003),
        ("250\u00b5s", 0.00025),
        ("1ns", 1e-9),
        ("-5s", -5.0),
    ],
)
def test_go_durations_parse_like_time_parse_duration(text: str, seconds: float) -> None:
    assert common.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "1d", "10 s", "1h 2m", ".s", "1.2.3s", "5S", "+"])
def test_malformed_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        common.parse_duration(text)


def test_duration_minimum_is_one_millisecond_by_default() -> None:
    assert common.duration_error("1ms") is None
    assert common.duration_error("999us") == 'invalid value "999us": must be at least 1ms'
    assert common.duration_error("0s", minimum=0) is None
    assert common.duration_error("-1s", minimum=0) == 'invalid value "-1s": must be at least 0ms'


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("10s", True),
        ("1h30m", True),
        ("500ms", True),
        ("99999s", True),
        ("100000s", False),
        ("1.5s", False),
        ("1h1m1s1ms", True),
        ("1h1m1s1ms1s", False),
        ("10", False),
    ],
)
def test_gateway_api_durations_follow_gep_2257(text: str, ok: bool) -> None:
    assert (common.gateway_duration_error(text) is None) is ok


def test_ports() -> None:
    assert common.port_error(1) is None
    assert common.port_error(65535) is None
    assert common.port_error(0) == "invalid value 0: must be between 1 and 65535, inclusive"
    assert common.port_error(0, allow_zero=True) is None
    assert common.port_string_error("8080") is None
    assert common.port_string_error("08080") is None
    for bad in ("0", "65536", "-1", "80a", "", "\u0661\u0662"):
        assert common.port_string_error(bad) is not None, bad


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("http", True),
        ("h2c", True),
        ("grpc-web", True),
        ("a" * 15, True),
        ("a" * 16, False),
        ("HTTP", False),
        ("-http", False),
        ("http-", False),
        ("my--port", False),
        ("8080", False),
        ("http_1", False),
    ],
)
def test_iana_port_names(name: str, ok: bool) -> None:
    assert (common.iana_port_name_error(name) is None) is ok


def test_int_or_port_name() -> None:
    assert common.int_or_port_name_error(8080) is None
    assert common.int_or_port_name_error("http") is None
    assert common.int_or_port_name_error("8080") == (
        'invalid value "8080": a port number must be an integer, not a string'
    )
    assert common.int_or_port_name_error(0) is not None


def test_dns_names() -> None:
    assert common.dns_label_error("web-1") is None
    assert common.dns_label_error("1web") is None
    assert common.dns1035_label_error("1web") is not None
    assert common.dns_subdomain_error("a.b-c.d") is None
    assert common.dns_subdomain_error("a..b") is not None
    assert common.dns_subdomain_error("a" * 254) is not None


def test_regexes_must_compile_and_stay_within_re2() -> None:
    assert common.regex_error(r"^/api/v[0-9]+/.*$") is None
    assert "must be a valid regular expression" in (common.regex_error("(unclosed") or "")
    for construct in (r"(?=a)", r"(?!a)", r"(?<=a)b", r"(?<!a)b", r"(a)\1", r"(?P<x>a)(?P=x)"):
        assert "RE2" in (common.regex_error(construct) or ""), construct


def test_addresses() -> None:
    assert common.ip_or_cidr_error("10.0.0.1") is None
    assert common.ip_or_cidr_error("10.0.0.0/8") is None
    assert common.ip_or_cidr_error("fd00::/8") is None
    assert common.ip_or_cidr_error("10.0.0.256") is not None
    assert common.cidr_error("10.0.0.0/33") is not None
    assert common.ip_error("::1") is None
