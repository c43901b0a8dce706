"""What every converter shares: field paths in errors, and the result of one delta response."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ambientmesh.errors import InvalidInput
from ambientmesh.ztunnel.model import IPAddress
from ambientmesh.ztunnel.state import StateUpdate


class InvalidResource(InvalidInput):
    """A discovery resource that cannot be used; ``resource`` and ``path`` say where."""

    def __init__(self, resource: str, path: str, problem: str) -> None:
        where = f"{resource}: {path}" if path else resource
        super().__init__(f"{where}: {problem}")
        self.resource = resource
        self.path = path


class _Names(Protocol):
    def Name(self, number: Any) -> str: ...  # protobuf enum wrappers spell it so


_E = TypeVar("_E", bound=enum.Enum)


class FieldReader:
    """Field-path bookkeeping for one resource, so every error says exactly where it is."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def fail(self, path: str, problem: str) -> InvalidResource:
        return InvalidResource(self.resource, path, problem)

    def required(self, path: str, value: str) -> str:
        if not value:
            raise self.fail(path, "is required")
        return value

    def enum(
        self,
        path: str,
        kind: type[_E],
        names: _Names,
        value: int,
        renames: Mapping[str, str] | None = None,
    ) -> _E:
        try:
            name = names.Name(value)
            return kind[(renames or {}).get(name, name)]
        except (ValueError, KeyError):
            raise self.fail(path, f"{value} is not a supported {kind.__name__}") from None

    def ip(self, path: str, raw: bytes) -> IPAddress:
        if len(raw) not in (4, 16):
            raise self.fail(path, f"an IP address is 4 or 16 bytes, not {len(raw)}")
        return ipaddress.ip_address(raw)

    def port(self, path: str, value: int, *, allow_zero: bool = False) -> int:
        if not (0 if allow_zero else 1) <= value <= 65535:
            raise self.fail(path, f"port {value} is outside {0 if allow_zero else 1}..65535")
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Converted:
    """A delta response turned into one ``StateUpdate``, and what to NACK with."""

    update: StateUpdate
    errors: tuple[InvalidResource, ...] = ()
