"""Hand-assembled protobuf encoding of discovery resources and responses.

A resource is encoded once when it changes; every response to every stream then splices the
same bytes in. Building the response by concatenation instead of through message objects
keeps a push to many proxies from re-serialising (or, with upb, re-parsing) each resource per
stream. The layout is plain protobuf wire format (length-delimited fields, ascending field
numbers as protoc emits them); tests check it against the generated classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Field tags, (field_number << 3) | wire type 2 (length-delimited).
_ANY_TYPE_URL = b"\x0a"
_ANY_VALUE = b"\x12"
_RESOURCE_VERSION = b"\x0a"
_RESOURCE_ANY = b"\x12"
_RESOURCE_NAME = b"\x1a"
_RESOURCE_ALIASES = b"\x22"
_RESPONSE_SYSTEM_VERSION = b"\x0a"
_RESPONSE_RESOURCES = b"\x12"
_RESPONSE_TYPE_URL = b"\x22"
_RESPONSE_NONCE = b"\x2a"
_RESPONSE_REMOVED = b"\x32"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode()) if text else b""


def encode_resource(
    *, name: str, version: str, type_url: str, value: bytes, aliases: Sequence[str] = ()
) -> bytes:
    """An encoded ``Resource{version, resource: Any{type_url, value}, name, aliases}``."""
    any_bytes = _text(_ANY_TYPE_URL, type_url) + (_field(_ANY_VALUE, value) if value else b"")
    parts = [_text(_RESOURCE_VERSION, version), _field(_RESOURCE_ANY, any_bytes)]
    parts.append(_text(_RESOURCE_NAME, name))
    parts.extend(_field(_RESOURCE_ALIASES, alias.encode()) for alias in aliases)
    return b"".join(parts)


def encode_response(
    *,
    system_version: str,
    type_url: str,
    nonce: str,
    resources: Iterable[bytes],
    removed: Iterable[str],
) -> bytes:
    """An encoded ``DeltaDiscoveryResponse`` from already-encoded resources."""
    parts = [_text(_RESPONSE_SYSTEM_VERSION, system_version)]
    parts.extend(_field(_RESPONSE_RESOURCES, resource) for resource in resources)
    parts.append(_text(_RESPONSE_TYPE_URL, type_url))
    parts.append(_text(_RESPONSE_NONCE, nonce))
    parts.extend(_field(_RESPONSE_REMOVED, name.encode()) for name in removed)
    return b"".join(parts)
