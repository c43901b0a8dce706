"""Strict validation of one object: the envelope (apiVersion, kind, metadata) and kind rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput
from ambientmesh.resources import kinds


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldIssue:
    """One problem in one object: where (a field path like ``spec.ports[0].port``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate(obj: Mapping[str, Any]) -> list[FieldIssue]:
    """Every problem found in ``obj``; an empty list means it is valid."""
    issues: list[FieldIssue] = []
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        issues.append(FieldIssue(path="apiVersion", message="required"))
    if not isinstance(kind, str) or not kind:
        issues.append(FieldIssue(path="kind", message="required"))
    if issues or not isinstance(api_version, str) or not isinstance(kind, str):
        return issues
    try:
        kinds.lookup(api_version, kind)
    except InvalidInput as error:
        return [FieldIssue(path="kind", message=error.message)]
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return [FieldIssue(path="metadata", message="required")]
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        issues.append(FieldIssue(path="metadata.name", message="required"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        issues.append(
            FieldIssue(
                path="metadata.name",
                message=f'invalid value "{name}": must be a lowercase RFC 1123 subdomain',
            )
        )
    return issues
