"""What a written object must pass: a served kind, its schema, and the admission chain."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ambientmesh.errors import InvalidInput, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.resources.validation import FieldIssue
from ambientmesh.store import semantics as sem
from ambientmesh.store.admission import Admission, AdmissionRequest

Validator = Callable[[Mapping[str, Any]], list[FieldIssue]]


def kind_of(obj: object) -> KindInfo:
    """The served kind of a request body; InvalidInput says what is missing or unknown."""
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"expected a JSON object, got {type(obj).__name__}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise InvalidInput("apiVersion: required")
    if not isinstance(kind, str) or not kind:
        raise InvalidInput("kind: required")
    if not isinstance(obj.get("metadata"), Mapping):
        raise InvalidInput(f"{kind}: metadata: required")
    return kinds.lookup(api_version, kind)


def validate(validator: Validator, info: KindInfo, obj: Mapping[str, Any]) -> None:
    """Raise ``ObjectInvalid`` listing every schema issue of ``obj``."""
    issues = validator(obj)
    if issues:
        raise sem.ObjectInvalid(
            sem.describe(info, obj), [(issue.path, issue.message) for issue in issues]
        )


def admit(chain: Sequence[Admission], request: AdmissionRequest) -> dict[str, Any]:
    """Run ``request`` through every admission function; a rejection becomes ``ObjectInvalid``."""
    obj = request.obj
    try:
        for admission in chain:
            obj = admission(dataclasses.replace(request, obj=obj))
    except sem.ObjectInvalid:
        raise
    except ValidationFailed as error:
        raise sem.ObjectInvalid(
            sem.describe(request.kind, obj), [_split_issue(issue) for issue in error.issues]
        ) from None
    return dict(obj)


def _split_issue(issue: str) -> tuple[str, str]:
    """``spec.x: message`` -> (``spec.x``, ``message``) when the head looks like a field path."""
    head, sep, rest = issue.partition(": ")
    if sep and head and " " not in head:
        return head, rest
    return "", issue
