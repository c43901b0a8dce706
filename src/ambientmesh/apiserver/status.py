"""Kubernetes ``Status`` objects: errors on the wire, in both directions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ambientmesh.errors import (
    AlreadyExists,
    Conflict,
    Gone,
    InvalidInput,
    MeshError,
    NotAuthorized,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from ambientmesh.store.semantics import Forbidden, ObjectInvalid

# Kubernetes' reasons for statuses our error tree does not name itself.
_REASON_BY_STATUS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_for(error: MeshError, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Status body for ``error``; ``details`` names the object (name, group, kind)."""
    body_details: dict[str, Any] = dict(details or {})
    if isinstance(error, ObjectInvalid):
        body_details["causes"] = [
            {"reason": "FieldValueInvalid", "field": field, "message": message}
            for field, message in error.causes
        ]
    elif isinstance(error, ValidationFailed):
        body_details["causes"] = [
            {"reason": "FieldValueInvalid", "message": issue} for issue in error.issues
        ]
    return failure(error.status, error.reason, error.message, body_details)


def failure(
    code: int, reason: str | None, message: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASON_BY_STATUS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        body["details"] = dict(details)
    return body


def success(details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        body["details"] = dict(details)
    return body


def error_from_status(code: int, body: object) -> MeshError:
    """The ``MeshError`` a client raises for an error response (Status body or not)."""
    if not isinstance(body, Mapping) or body.get("kind") != "Status":
        text = str(body)[:500] if body else f"HTTP {code}"
        return _by_code(code, f"the API server answered {code}: {text}")
    message = str(body.get("message") or f"HTTP {code}")
    reason = str(body.get("reason") or "")
    if reason == "Invalid" or code == 422:
        return ValidationFailed(message.splitlines() or [message])
    factory = _BY_REASON.get(reason)
    return factory(message) if factory else _by_code(code, message)


_BY_REASON: dict[str, type[MeshError]] = {
    "NotFound": NotFound,
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Expired": Gone,
    "Gone": Gone,
    "BadRequest": InvalidInput,
    "MethodNotAllowed": InvalidInput,
    "RequestEntityTooLarge": InvalidInput,
    "UnsupportedMediaType": InvalidInput,
    "Forbidden": Forbidden,
    "Unauthorized": NotAuthorized,
    "ServiceUnavailable": Unavailable,
}


def _by_code(code: int, message: str) -> MeshError:
    if code == 404:
        return NotFound(message)
    if code == 409:
        return Conflict(message)
    if code == 410:
        return Gone(message)
    if code == 403:
        return Forbidden(message)
    if code == 503:
        return Unavailable(message)
    if 400 <= code < 500:
        return InvalidInput(message)
    return MeshError(message)
