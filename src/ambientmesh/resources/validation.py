"""Strict validation of one object, like ``kubectl apply --validate=strict``.

``validate(obj)`` returns every problem in the object at once: the envelope (apiVersion, kind,
metadata), then the kind's structure and rules. Core kinds are checked against Kubernetes' own
JSON schemas plus the value rules in ``core``; Istio and Gateway API kinds by their models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ambientmesh.errors import InvalidInput
from ambientmesh.resources import core, kinds, schemas
from ambientmesh.resources.issues import FieldIssue, wrong_type
from ambientmesh.resources.metadata import check_metadata
from ambientmesh.resources.modeling import issues_from_error
from ambientmesh.resources.resource import Resource
from ambientmesh.resources.typed import model_for

__all__ = ["FieldIssue", "validate", "validate_and_parse"]


def validate(obj: Mapping[str, Any]) -> list[FieldIssue]:
    """Every problem found in ``obj``; an empty list means it is valid."""
    return validate_and_parse(obj)[0]


def validate_and_parse(obj: object) -> tuple[list[FieldIssue], Resource | None]:
    """The problems in ``obj`` and, for a valid Istio or Gateway API object, its model."""
    if not isinstance(obj, Mapping):
        return [FieldIssue(path="", message=wrong_type("object", obj))], None
    info, issues = _envelope(obj)
    if info is None:
        return issues, None
    issues.extend(check_metadata(obj, info))
    model_class = model_for(info)
    model = None
    if model_class is None:
        issues.extend(
            schemas.check(obj, info.group, kinds.split_api_version(obj["apiVersion"])[1], info.kind)
        )
        issues.extend(core.CHECKS[(info.group, info.kind)](obj))
    else:
        model, found = _check_model(obj, model_class)
        issues.extend(found)
    unique = list(dict.fromkeys(issues))
    return unique, model if not unique else None


def _envelope(obj: Mapping[str, Any]) -> tuple[kinds.KindInfo | None, list[FieldIssue]]:
    issues = []
    for name in ("apiVersion", "kind"):
        value = obj.get(name)
        if value is None or value == "":
            issues.append(FieldIssue(path=name, message="required value"))
        elif not isinstance(value, str):
            issues.append(FieldIssue(path=name, message=wrong_type("string", value)))
    if issues:
        return None, issues
    try:
        return kinds.lookup(obj["apiVersion"], obj["kind"]), []
    except InvalidInput as error:
        return None, [FieldIssue(path="apiVersion", message=error.message)]


def _check_model(
    obj: Mapping[str, Any], model: type[Resource]
) -> tuple[Resource | None, list[FieldIssue]]:
    try:
        return model.model_validate(obj, by_name=False), []
    except ValidationError as error:
        found = issues_from_error(error, model)
    # The envelope check owns apiVersion, kind and metadata and words them better.
    owned = ("apiVersion", "kind", "metadata")
    return None, [
        issue for issue in found if issue.path.split(".", 1)[0].split("[", 1)[0] not in owned
    ]
