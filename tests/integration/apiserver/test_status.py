"""Errors survive the trip through a Status object as the same MeshError class."""

from __future__ import annotations

import pytest

from ambientmesh.apiserver.status import error_from_status, status_for
from ambientmesh.errors import (
    AlreadyExists,
    Conflict,
    Gone,
    InvalidInput,
    MeshError,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from ambientmesh.store.semantics import Forbidden, ObjectInvalid


@pytest.mark.parametrize(
    "error",
    [
        NotFound('pods "x" not found'),
        AlreadyExists('pods "x" already exists'),
        Conflict("the object has been modified"),
        Gone("too old resource version: 1 (5)"),
        InvalidInput("bad selector"),
        Forbidden("namespace is being terminated"),
        Unavailable("store closed"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_round_trip(error: MeshError) -> None:
    status = status_for(error)
    assert status["code"] == error.status
    back = error_from_status(status["code"], status)
    assert type(back) is type(error)
    assert back.message == error.message


def test_invalid_object_carries_field_causes_and_every_issue() -> None:
    error = ObjectInvalid("Pod default/web", [("spec.a", "required"), ("spec.b", "too big")])
    status = status_for(error, {"name": "web"})
    assert status["code"] == 422
    assert status["details"]["name"] == "web"
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.a", "spec.b"]
    back = error_from_status(422, status)
    assert isinstance(back, ValidationFailed)
    assert back.issues == ("Pod default/web: spec.a: required", "Pod default/web: spec.b: too big")


def test_a_non_status_error_body_is_still_mapped_by_code() -> None:
    assert isinstance(error_from_status(502, "<html>bad gateway</html>"), MeshError)
    assert isinstance(error_from_status(404, None), NotFound)
