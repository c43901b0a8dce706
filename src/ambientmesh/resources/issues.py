"""FieldIssue: one problem found in one object, and helpers to build field paths."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldIssue:
    """One problem in one object: where (a field path like ``spec.ports[0].port``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def field(path: str, name: str) -> str:
    """``spec`` + ``ports`` -> ``spec.ports``."""
    return f"{path}.{name}" if path else name


def index(path: str, position: int) -> str:
    """``spec.ports`` + 1 -> ``spec.ports[1]``."""
    return f"{path}[{position}]"


def key(path: str, name: str) -> str:
    """A map entry, as Kubernetes prints it: ``metadata.labels[app.kubernetes.io/name]``."""
    return f"{path}[{name}]"


def describe(value: Any) -> str:
    """A value as it appears in a message: strings quoted, JSON spelling for the rest."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:76] + '..."'
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def type_name(value: Any) -> str:
    """The JSON type of ``value`` for 'expected X, got Y' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def wrong_type(expected: str, value: Any) -> str:
    """``invalid type: expected integer, got string "80"``."""
    got = type_name(value)
    if isinstance(value, str | bool | int | float):
        got = f"{got} {describe(value)}"
    return f"invalid type: expected {expected}, got {got}"


def invalid(value: Any, rule: str) -> str:
    """``invalid value 70000: must be between 1 and 65535``."""
    return f"invalid value {describe(value)}: {rule}"
