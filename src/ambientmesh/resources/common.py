"""Shared value rules: DNS names, label keys and values, ports, durations, regexes, CIDRs.

Each ``*_error`` function returns ``None`` for a valid value, or the message naming the value
and the rule it breaks; callers attach the field path. The rules follow Kubernetes' own
validation helpers (apimachinery ``validation.IsDNS1123Label``, ``IsQualifiedName``, ...).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ambientmesh.resources.issues import invalid

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
IANA_NAME_MAX = 15

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_IANA_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_HAS_LETTER = re.compile(r"[a-z]")
_HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def dns_label_error(value: str) -> str | None:
    """RFC 1123 label: namespace names, container names, port names of Services."""
    if len(value) > DNS_LABEL_MAX:
        return invalid(value, f"must be no more than {DNS_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(value):
        return invalid(
            value,
            "must be an RFC 1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return None


def dns1035_label_error(value: str) -> str | None:
    """RFC 1035 label (starts with a letter): what Kubernetes requires of Service names."""
    if len(value) > DNS_LABEL_MAX:
        return invalid(value, f"must be no more than {DNS_LABEL_MAX} characters")
    if not _DNS1035_LABEL.fullmatch(value):
        return invalid(
            value,
            "must be an RFC 1035 label: lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit",
        )
    return None


def dns_subdomain_error(value: str) -> str | None:
    """RFC 1123 subdomain: the name of most objects."""
    if len(value) > DNS_SUBDOMAIN_MAX:
        return invalid(value, f"must be no more than {DNS_SUBDOMAIN_MAX} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return invalid(
            value,
            "must be a lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit",
        )
    return None


def qualified_name_error(value: str) -> str | None:
    """A label or annotation key: optional DNS-subdomain prefix and '/', then a name."""
    prefix, slash, name = value.rpartition("/")
    if slash and not prefix:
        return invalid(value, "prefix part must be non-empty")
    if prefix and (len(prefix) > DNS_SUBDOMAIN_MAX or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return invalid(value, "prefix part must be a lowercase RFC 1123 subdomain")
    if "/" in prefix:
        return invalid(value, "a qualified name may contain at most one '/'")
    if not name:
        return invalid(value, "name part must be non-empty")
    if len(name) > DNS_LABEL_MAX:
        return invalid(value, f"name part must be no more than {DNS_LABEL_MAX} characters")
    if not _QUALIFIED_NAME_PART.fullmatch(name):
        return invalid(
            value,
            "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character",
        )
    return None


def label_value_error(value: str) -> str | None:
    """A label value: empty, or up to 63 alphanumerics with '-', '_', '.' inside."""
    if len(value) > LABEL_VALUE_MAX:
        return invalid(value, f"must be no more than {LABEL_VALUE_MAX} characters")
    if value and not _QUALIFIED_NAME_PART.fullmatch(value):
        return invalid(
            value,
            "a label value must be empty or consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character",
        )
    return None


def port_error(value: int, *, allow_zero: bool = False) -> str | None:
    """A TCP/UDP port number: 1-65535 (0 too where it means "unset")."""
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        return invalid(value, f"must be between {low} and 65535, inclusive")
    return None


def port_string_error(value: str) -> str | None:
    """A port written as a string, as Istio's AuthorizationPolicy takes them."""
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 65535:
        return invalid(value, "must be a port number between 1 and 65535")
    return None


def iana_port_name_error(value: str) -> str | None:
    """An IANA service name: the name of a container port, or a named targetPort."""
    if len(value) > IANA_NAME_MAX:
        return invalid(value, f"must be no more than {IANA_NAME_MAX} characters")
    if not _IANA_NAME.fullmatch(value):
        return invalid(
            value,
            "must contain only lowercase letters, digits and '-', "
            "and must start and end with a letter or digit",
        )
    if "--" in value:
        return invalid(value, "must not contain consecutive hyphens")
    if not _HAS_LETTER.search(value):
        return invalid(value, "must contain at least one letter")
    return None


def int_or_port_name_error(value: Any) -> str | None:
    """A port given as a number (1-65535) or as an IANA port name."""
    if isinstance(value, bool):
        return None  # a type error, reported by the schema
    if isinstance(value, int):
        return port_error(value)
    if isinstance(value, str):
        if value.isdigit():
            return invalid(value, "a port number must be an integer, not a string")
        return iana_port_name_error(value)
    return None


def ip_error(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return invalid(value, "must be a valid IP address")
    return None


def ip_or_cidr_error(value: str) -> str | None:
    """An address (``10.0.0.1``) or a block (``10.0.0.0/16``), IPv4 or IPv6."""
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return invalid(value, "must be an IP address or a CIDR block such as 10.0.0.0/16")
    return None


def cidr_error(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return invalid(value, "must be a CIDR block such as 10.0.0.0/16")
    return None


# Python's ``re`` accepts constructs that RE2 (used by Envoy and Go) rejects: lookaround and
# backreferences. A pattern that compiles here but not there would be accepted now and fail
# later inside the proxy, so we reject those constructs up front. Other RE2 differences
# (possessive quantifiers, \Z, ...) are rare and left to the proxy.
_NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!|P=)|\\[1-9]")


def regex_error(value: str) -> str | None:
    """A regular expression that compiles and stays within what RE2 accepts."""
    try:
        re.compile(value)
    except re.error as error:
        return invalid(value, f"must be a valid regular expression: {error}")
    if _NOT_RE2.search(value):
        return invalid(value, "lookaround and backreferences are not supported (RE2 syntax)")
    return None


def http_header_name_error(value: str) -> str | None:
    if not _HTTP_TOKEN.fullmatch(value):
        return invalid(value, "must be a valid HTTP header name")
    return None


# Go's time.ParseDuration syntax, which Istio uses for every duration field: a sequence of
# decimal numbers, each with a unit, such as "300ms", "1.5h" or "2h45m".
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``1h2m3s``, ``100ms``, ``0``); ValueError if malformed."""
    if text == "0":
        return 0.0
    body = text[1:] if text[:1] in "+-" else text
    total = 0.0
    position = 0
    for match in _GO_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f"invalid duration {text!r}")
    return -total if text.startswith("-") else total


def duration_error(value: str, *, minimum: float | None = 0.001) -> str | None:
    """A Go duration; ``minimum`` (seconds) as Istio requires (1ms for most fields)."""
    try:
        seconds = parse_duration(value)
    except ValueError:
        return invalid(value, "must be a duration such as 1h2m3s, 10s or 100ms")
    if minimum is not None and seconds < minimum:
        least = f"{minimum * 1000:g}ms" if minimum < 1 else f"{minimum:g}s"
        return invalid(value, f"must be at least {least}")
    return None


# Gateway API's Duration (GEP-2257): up to four number+unit parts, units h, m, s, ms.
_GATEWAY_DURATION = re.compile(r"([0-9]{1,5}(h|m|s|ms)){1,4}")


def parse_gateway_duration(text: str) -> float:
    """Seconds in a Gateway API duration (``1h30m``, ``500ms``); ValueError if malformed."""
    if not _GATEWAY_DURATION.fullmatch(text):
        raise ValueError(f"invalid Gateway API duration {text!r}")
    return parse_duration(text)


def gateway_duration_error(value: str) -> str | None:
    if not _GATEWAY_DURATION.fullmatch(value):
        return invalid(value, "must match ^([0-9]{1,5}(h|m|s|ms)){1,4}$, e.g. 10s or 1m30s")
    return None
