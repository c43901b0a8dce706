"""Typed views of Istio and Gateway API objects: the frozen pydantic models, by kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ambientmesh.errors import InvalidInput, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.resources.gateway import Gateway, GatewayClass
from ambientmesh.resources.gateway_routes import GRPCRoute, HTTPRoute, TCPRoute
from ambientmesh.resources.istio_destinationrule import DestinationRule
from ambientmesh.resources.istio_security import (
    AuthorizationPolicy,
    PeerAuthentication,
    RequestAuthentication,
)
from ambientmesh.resources.istio_serviceentry import ServiceEntry
from ambientmesh.resources.istio_telemetry import Telemetry
from ambientmesh.resources.istio_virtualservice import VirtualService
from ambientmesh.resources.resource import Resource

MODELS: dict[tuple[str, str], type[Resource]] = {
    (kinds.GATEWAY, "GatewayClass"): GatewayClass,
    (kinds.GATEWAY, "Gateway"): Gateway,
    (kinds.GATEWAY, "HTTPRoute"): HTTPRoute,
    (kinds.GATEWAY, "GRPCRoute"): GRPCRoute,
    (kinds.GATEWAY, "TCPRoute"): TCPRoute,
    (kinds.ISTIO_SECURITY, "AuthorizationPolicy"): AuthorizationPolicy,
    (kinds.ISTIO_SECURITY, "PeerAuthentication"): PeerAuthentication,
    (kinds.ISTIO_SECURITY, "RequestAuthentication"): RequestAuthentication,
    (kinds.ISTIO_NETWORKING, "VirtualService"): VirtualService,
    (kinds.ISTIO_NETWORKING, "DestinationRule"): DestinationRule,
    (kinds.ISTIO_NETWORKING, "ServiceEntry"): ServiceEntry,
    (kinds.ISTIO_TELEMETRY, "Telemetry"): Telemetry,
}

R = TypeVar("R", bound=Resource)


def model_for(info: kinds.KindInfo) -> type[Resource] | None:
    """The model class of a kind, or None for the core kinds (see ``views``)."""
    return MODELS.get((info.group, info.kind))


def parse(obj: Mapping[str, Any]) -> Resource:
    """Validate ``obj`` and return its model; ValidationFailed lists every problem."""
    from ambientmesh.resources.validation import validate_and_parse

    issues, model = validate_and_parse(obj)
    if issues or model is None:
        name = (
            obj.get("metadata", {}).get("name")
            if isinstance(obj.get("metadata"), Mapping)
            else None
        )
        where = f"{obj.get('kind', 'object')} {name}" if name else str(obj.get("kind", "object"))
        raise ValidationFailed(
            [f"{where}: {issue}" for issue in issues]
            or [f"{where}: not an Istio or Gateway API kind"]
        )
    return model


def parse_as(obj: Mapping[str, Any], model: type[R]) -> R:
    """Like :func:`parse`, and check the object is of the expected kind."""
    parsed = parse(obj)
    if not isinstance(parsed, model):
        raise InvalidInput(f"expected a {model.__name__}, got {type(parsed).__name__}")
    return parsed
