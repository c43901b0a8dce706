"""Helpers shared by the core-kind rules: an issue list with shorthands, defensive readers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ambientmesh.resources.issues import FieldIssue, describe, invalid

PROTOCOLS = ("TCP", "UDP", "SCTP")


class Issues(list[FieldIssue]):
    """A list of issues with shorthands for the checks below."""

    def add(self, path: str, message: str | None) -> None:
        if message is not None:
            self.append(FieldIssue(path=path, message=message))

    def enum(self, path: str, value: Any, allowed: tuple[str, ...]) -> None:
        if isinstance(value, str) and value not in allowed:
            names = ", ".join(f'"{name}"' for name in allowed)
            self.add(path, f"unsupported value {describe(value)}: must be one of {names}")

    def at_least(self, path: str, value: Any, minimum: int) -> None:
        if int_of(value) is not None and value < minimum:
            self.add(path, invalid(value, f"must be greater than or equal to {minimum}"))


def map_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def int_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def str_of(value: Any) -> str | None:
    return value if isinstance(value, str) else None
