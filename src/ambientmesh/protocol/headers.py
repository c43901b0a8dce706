"""HTTP/2 field blocks of CONNECT tunnels: the validity rules of RFC 9113 §8 and HBONE's headers."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ambientmesh.protocol.events import Headers

RawFields = Sequence[tuple[bytes, bytes]]

# RFC 9113 §8.2.1: a name holds no control character, space, uppercase letter or octet
# above 0x7e; a value holds no NUL, CR or LF and neither starts nor ends with whitespace.
_BAD_NAME = re.compile(rb"[\x00-\x20A-Z\x7f-\xff]")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
# RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2.
_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"}
)
_REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
_RESPONSE_PSEUDO = frozenset({b":status"})


class MalformedFields(Exception):
    """A field block RFC 9113 §8.1.1 calls malformed: a stream error of type PROTOCOL_ERROR.

    Internal to the protocol core; it never leaves ``ambientmesh.protocol``.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestHead:
    method: str
    authority: str | None
    headers: Headers


def parse_request(fields: RawFields) -> RequestHead:
    """A request's pseudo-fields and regular fields; MalformedFields if RFC 9113 forbids it."""
    pseudo, headers = _split(fields, _REQUEST_PSEUDO)
    method = pseudo.get(":method")
    if method is None:
        raise MalformedFields("request has no :method")
    if method == "CONNECT":
        # RFC 9113 §8.5: CONNECT carries only :method and :authority (no extended CONNECT).
        if ":scheme" in pseudo or ":path" in pseudo:
            raise MalformedFields("CONNECT request carries :scheme or :path")
    elif not pseudo.get(":scheme") or not pseudo.get(":path"):
        raise MalformedFields(f"{method} request lacks :scheme or :path")
    return RequestHead(method=method, authority=pseudo.get(":authority"), headers=headers)


def parse_response(fields: RawFields) -> tuple[int, Headers]:
    """A response's status and regular fields; MalformedFields if RFC 9113 forbids it."""
    pseudo, headers = _split(fields, _RESPONSE_PSEUDO)
    status_text = pseudo.get(":status")
    if status_text is None:
        raise MalformedFields("response has no :status")
    if len(status_text) != 3 or not status_text.isdigit() or status_text[0] == "0":
        raise MalformedFields(f"response :status {status_text!r} is not a 3-digit code")
    return int(status_text), headers


def _split(fields: RawFields, allowed_pseudo: frozenset[bytes]) -> tuple[dict[str, str], Headers]:
    pseudo: dict[str, str] = {}
    regular: list[tuple[str, str]] = []
    for name, value in fields:
        if _BAD_VALUE.search(value):
            raise MalformedFields(f"field {name!r} has a forbidden character or edge whitespace")
        if name.startswith(b":"):
            if regular:
                raise MalformedFields(f"pseudo-field {name!r} follows a regular field")
            if name not in allowed_pseudo:
                raise MalformedFields(f"pseudo-field {name!r} is not allowed here")
            key = name.decode("ascii")
            if key in pseudo:
                raise MalformedFields(f"pseudo-field {name!r} appears twice")
            pseudo[key] = value.decode("latin-1")
            continue
        if not name or _BAD_NAME.search(name):
            raise MalformedFields(f"field name {name!r} is not a lowercase token")
        if name in _CONNECTION_SPECIFIC or (name == b"te" and value != b"trailers"):
            raise MalformedFields(f"connection-specific field {name!r} is not allowed in HTTP/2")
        regular.append((name.decode("ascii"), value.decode("latin-1")))
    return pseudo, tuple(regular)


def connect_fields(authority: str, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The field list of a CONNECT request (RFC 9113 §8.5): :method, :authority, then headers."""
    fields = [(":method", "CONNECT"), (":authority", authority)]
    fields.extend((name.lower(), value) for name, value in headers)
    return fields


def response_fields(status: int, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if not 100 <= status <= 999:
        raise ValueError(f"HTTP status {status} is not a 3-digit code")
    return [(":status", str(status)), *((name.lower(), value) for name, value in headers)]


def check_outgoing(fields: Iterable[tuple[str, str]]) -> None:
    """Refuse to send what a peer would reject as malformed; ValueError names the field."""
    for name, value in fields:
        raw_name = name.encode("latin-1")
        if not name.startswith(":") and (not raw_name or _BAD_NAME.search(raw_name)):
            raise ValueError(f"header name {name!r} is not a lowercase token")
        if raw_name in _CONNECTION_SPECIFIC:
            raise ValueError(f"header {name!r} is connection-specific and not allowed in HTTP/2")
        if _BAD_VALUE.search(value.encode("latin-1")):
            raise ValueError(f"header {name!r} has a forbidden character or edge whitespace")


def forwarded(client: str, *, host: str | None = None) -> str:
    """ztunnel's ``forwarded`` value: ``for="ip:port"`` and optionally ``;host=<service>``
    (RFC 7239; the quotes are required because the value holds a colon)."""
    value = f'for="{client}"'
    return f"{value};host={host}" if host else value


def traceparent(trace_id: int, parent_id: int) -> str:
    """A W3C traceparent, version 00, not sampled: ``00-<32 hex>-<16 hex>-00``."""
    if not (0 < trace_id < 2**128 and 0 < parent_id < 2**64):
        raise ValueError("trace and parent ids must be non-zero 128- and 64-bit numbers")
    return f"00-{trace_id:032x}-{parent_id:016x}-00"


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (lowercase), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None
