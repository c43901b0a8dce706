"""Readiness probe specifications and the success/failure counting that turns results into
readiness; pure. Field names, defaults and semantics are Kubernetes': a container is not ready
until `successThreshold` probes in a row pass, and stops being ready after `failureThreshold`
probes in a row fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any, Literal

from ambientmesh.errors import InvalidInput

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSocket:
    port: int
    host: IPv4Address | None = None  # None: the pod's address


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpGet:
    port: int
    path: str = "/"
    host: IPv4Address | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec:
    command: tuple[str, ...]


Action = TcpSocket | HttpGet | Exec


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    action: Action
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.period <= 0 or self.timeout <= 0:
            raise InvalidInput("probe delays must be >= 0 and period and timeout > 0")
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise InvalidInput("probe thresholds must be at least 1")


def parse_probe(spec: Mapping[str, Any], *, named_ports: Mapping[str, int] | None = None) -> Probe:
    """A Probe from a Kubernetes `readinessProbe` object; errors name the offending field."""
    actions = [key for key in ("tcpSocket", "httpGet", "exec") if key in spec]
    if len(actions) != 1:
        raise InvalidInput("readinessProbe needs exactly one of tcpSocket, httpGet or exec")
    kind = actions[0]
    body = spec[kind]
    if not isinstance(body, Mapping):
        raise InvalidInput(f"readinessProbe.{kind} must be an object")
    action: Action
    if kind == "exec":
        command = body.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise InvalidInput("readinessProbe.exec.command must be a non-empty list of strings")
        action = Exec(command=tuple(command))
    elif kind == "tcpSocket":
        action = TcpSocket(port=_port(kind, body, named_ports), host=_host(kind, body))
    else:
        action = HttpGet(
            port=_port(kind, body, named_ports),
            host=_host(kind, body),
            path=_path(body.get("path", "/")),
            scheme=_scheme(body.get("scheme", "HTTP")),
            headers=_headers(body.get("httpHeaders", [])),
        )
    return Probe(
        action=action,
        initial_delay=_number(spec, "initialDelaySeconds", 0),
        period=_number(spec, "periodSeconds", 10),
        timeout=_number(spec, "timeoutSeconds", 1),
        success_threshold=int(_number(spec, "successThreshold", 1)),
        failure_threshold=int(_number(spec, "failureThreshold", 3)),
    )


class ReadinessTracker:
    """Counts consecutive results; `ready` flips only when a threshold is reached."""

    def __init__(self, probe: Probe) -> None:
        self._probe = probe
        self.ready = False
        self._successes = 0
        self._failures = 0

    def observe(self, success: bool) -> bool:
        """Record one probe result; True when readiness changed."""
        if success:
            self._successes += 1
            self._failures = 0
            flip = not self.ready and self._successes >= self._probe.success_threshold
        else:
            self._failures += 1
            self._successes = 0
            flip = self.ready and self._failures >= self._probe.failure_threshold
        if flip:
            self.ready = not self.ready
        return flip


def _port(kind: str, body: Mapping[str, Any], named_ports: Mapping[str, int] | None) -> int:
    port = body.get("port")
    if isinstance(port, str) and not port.isdigit():
        if named_ports is None or port not in named_ports:
            raise InvalidInput(f"readinessProbe.{kind}.port {port!r} names no container port")
        port = named_ports[port]
    if isinstance(port, str):
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInput(f"readinessProbe.{kind}.port must be 1..65535 or a port name")
    return port


def _host(kind: str, body: Mapping[str, Any]) -> IPv4Address | None:
    host = body.get("host")
    if host in (None, ""):
        return None
    try:
        address = ip_address(str(host))
    except ValueError:
        raise InvalidInput(f"readinessProbe.{kind}.host {host!r} must be an IPv4 address") from None
    if not isinstance(address, IPv4Address):
        raise InvalidInput(f"readinessProbe.{kind}.host {host!r} must be an IPv4 address")
    return address


def _path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
        raise InvalidInput(f"readinessProbe.httpGet.path {path!r} must be an absolute path")
    return path


def _scheme(scheme: object) -> Literal["HTTP", "HTTPS"]:
    if scheme == "HTTP":
        return "HTTP"
    if scheme == "HTTPS":
        return "HTTPS"
    raise InvalidInput(f"readinessProbe.httpGet.scheme {scheme!r} must be HTTP or HTTPS")


def _headers(items: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        raise InvalidInput("readinessProbe.httpGet.httpHeaders must be a list")
    headers = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        value = item.get("value", "") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidInput(
                f"readinessProbe.httpGet.httpHeaders[{index}].name is not a header name"
            )
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise InvalidInput(
                f"readinessProbe.httpGet.httpHeaders[{index}].value is not a header value"
            )
        headers.append((name, value))
    return tuple(headers)


def _number(spec: Mapping[str, Any], key: str, default: float) -> float:
    value = spec.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"readinessProbe.{key} must be a non-negative number")
    return float(value)
