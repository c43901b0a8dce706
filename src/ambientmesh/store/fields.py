"""Field selectors (``spec.nodeName=n1,status.phase!=Failed``): parsing and matching.

Like Kubernetes, each kind supports a fixed set of field labels; every kind supports
``metadata.name`` and ``metadata.namespace``. A field an object does not set reads as "".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput

_COMMON = ("metadata.name", "metadata.namespace")

# Field labels per kind beyond metadata.*, as the Kubernetes API serves them.
_BY_KIND: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (
        "spec.nodeName",
        "spec.serviceAccountName",
        "spec.restartPolicy",
        "status.phase",
        "status.podIP",
    ),
    ("", "Namespace"): ("status.phase",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
}


def supported_fields(group: str, kind: str) -> tuple[str, ...]:
    return _COMMON + _BY_KIND.get((group, kind), ())


def selectable_fields(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The kind's field labels that ``obj`` sets to a non-empty string, for indexing."""
    fields: dict[str, str] = {}
    for label in _BY_KIND.get((group, kind), ()):
        value: Any = obj
        for part in label.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            fields[label] = value
    return fields


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRequirement:
    field: str
    value: str
    negated: bool

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) != self.negated


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` requirements."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(req.matches(fields) for req in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value an equality requirement pins ``field`` to, if any (for index lookups)."""
        for req in self.requirements:
            if req.field == field and not req.negated:
                return req.value
        return None


def parse_field_selector(text: str, *, group: str, kind: str) -> FieldSelector:
    """Parse a field selector for ``kind``; InvalidInput naming the bad term otherwise."""
    supported = supported_fields(group, kind)
    requirements = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue
        requirement = _parse_term(term.strip())
        if requirement.field not in supported:
            raise InvalidInput(
                f'field label not supported: "{requirement.field}" for {kind} '
                f"(supported: {', '.join(supported)})"
            )
        requirements.append(requirement)
    return FieldSelector(requirements=tuple(requirements))


def _parse_term(term: str) -> FieldRequirement:
    for operator, negated in (("!=", True), ("==", False), ("=", False)):
        parts = _split_unescaped(term, operator, limit=1)
        if len(parts) == 2:
            field, value = parts[0].strip(), _unescape(parts[1].strip())
            if not field:
                break
            return FieldRequirement(field=field, value=value, negated=negated)
    raise InvalidInput(
        f'invalid field selector term "{term}": expected field=value, field==value or field!=value'
    )


def _split_unescaped(text: str, separator: str, *, limit: int = -1) -> list[str]:
    """Split on ``separator`` where it is not preceded by a backslash escape."""
    parts: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if text.startswith(separator, index) and (limit < 0 or len(parts) < limit):
            parts.append("".join(current))
            current = []
            index += len(separator)
            continue
        current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(value):
        if value[index] == "\\" and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
        else:
            out.append(value[index])
            index += 1
    return "".join(out)
