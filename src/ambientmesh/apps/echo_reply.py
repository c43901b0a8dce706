"""What the echo server says back to an HTTP request, as text or JSON; pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoRequest:
    pod: str
    client: str  # ip:port as the server saw it
    protocol: str  # HTTP/1.1 or HTTP/2
    method: str
    target: str  # path and query, as sent
    headers: Sequence[tuple[str, str]]
    body_bytes: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoReply:
    status: int
    content_type: str
    body: bytes


def reply(request: EchoRequest) -> EchoReply:
    """Describe the request; `?status=NNN` picks the status, JSON on `?format=json` or Accept."""
    query = parse_qs(urlsplit(request.target).query)
    status = _status(query.get("status", [""])[0])
    facts = {
        "pod": request.pod,
        "client": request.client,
        "protocol": request.protocol,
        "method": request.method,
        "path": request.target,
        "body_bytes": request.body_bytes,
        "headers": _merged(request.headers),
    }
    if _wants_json(query, request.headers):
        body = json.dumps(facts, indent=2).encode() + b"\n"
        return EchoReply(status=status, content_type="application/json", body=body)
    lines = [f"{key}: {facts[key]}" for key in ("pod", "client", "protocol", "method", "path")]
    lines.append(f"body_bytes: {request.body_bytes}")
    lines.append("")
    lines += [f"{name}: {value}" for name, value in request.headers]
    body = ("\n".join(lines) + "\n").encode()
    return EchoReply(status=status, content_type="text/plain; charset=utf-8", body=body)


def _merged(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Headers as one object; a repeated name's values are joined with ", " (RFC 9110 5.3)."""
    merged: dict[str, str] = {}
    for name, value in headers:
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _status(text: str) -> int:
    if text.isdigit() and 200 <= int(text) <= 599:
        return int(text)
    return 200


def _wants_json(query: Mapping[str, list[str]], headers: Sequence[tuple[str, str]]) -> bool:
    if query.get("format", [""])[0] == "json":
        return True
    accept = ",".join(value for name, value in headers if name.lower() == "accept")
    return "application/json" in accept
