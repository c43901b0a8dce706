"""What a waypoint Gateway becomes: its Deployment, Service and ServiceAccount (pure).

As istiod's deployment controller renders them (istio-ambient.md §2.8, §3.4): everything is
named after the Gateway and owned by it (so deleting the Gateway garbage-collects them), pods
carry ``gateway.networking.k8s.io/gateway-name`` and ``gateway.istio.io/managed`` and are
never captured (``istio.io/dataplane-mode: none``); they speak HBONE themselves
(``networking.istio.io/tunnel: http``). The service account is the Gateway's name unless the
annotation ``gateway.istio.io/service-account`` names another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ambientmesh.controlplane.ambient import labels as L

SERVICE_ACCOUNT_ANNOTATION = "gateway.istio.io/service-account"
HBONE_PORT = 15008
READINESS_PORT = 15021


@dataclass(frozen=True, slots=True, kw_only=True)
class WaypointSettings:
    """How waypoint pods are started; ``command`` runs the waypoint proxy."""

    image: str = "ambientmesh"
    command: Sequence[str] = ("ambientmesh", "waypoint")
    # Where waypoint pods reach discovery and the CA (as istiod renders XDS/CA addresses
    # into its waypoint Deployments); unset, the waypoint uses its own default.
    control_plane_address: str | None = None


def service_account_of(gateway: Mapping[str, Any]) -> str:
    metadata = gateway.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return str(annotations.get(SERVICE_ACCOUNT_ANNOTATION) or metadata.get("name"))


def render(gateway: Mapping[str, Any], settings: WaypointSettings) -> list[dict[str, Any]]:
    """ServiceAccount, Deployment and Service for one waypoint Gateway, in apply order."""
    metadata = gateway["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    owner = {
        "apiVersion": gateway.get("apiVersion", "gateway.networking.k8s.io/v1"),
        "kind": "Gateway",
        "name": name,
        "uid": metadata.get("uid", ""),
        "controller": True,
    }
    selector = {L.GATEWAY_NAME_LABEL: name}
    labels = {**selector, L.GATEWAY_MANAGED_LABEL: L.GATEWAY_MANAGED_VALUE}
    pod_labels = {**labels, L.DATAPLANE_MODE: L.DATAPLANE_NONE, L.TUNNEL_LABEL: "http"}

    def meta(object_name: str) -> dict[str, Any]:
        return {
            "name": object_name,
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [dict(owner)],
        }

    account = service_account_of(gateway)
    command = [*settings.command, "--gateway", f"{namespace}/{name}"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(account)},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(name),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(selector)},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {
                        "serviceAccountName": account,
                        "containers": [
                            {
                                "name": "waypoint",
                                "image": settings.image,
                                "command": command,
                                "env": _env(settings),
                                "ports": [
                                    {"name": "hbone", "containerPort": HBONE_PORT},
                                    {"name": "status", "containerPort": READINESS_PORT},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/healthz/ready", "port": READINESS_PORT}
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(name),
            "spec": {
                "selector": dict(selector),
                "ports": [
                    {"name": "mesh", "port": HBONE_PORT, "appProtocol": "all"},
                    {"name": "status-port", "port": READINESS_PORT},
                ],
            },
        },
    ]


def _env(settings: WaypointSettings) -> list[dict[str, str]]:
    if settings.control_plane_address is None:
        return []
    return [{"name": "CONTROL_PLANE_ADDRESS", "value": settings.control_plane_address}]


def gateway_class() -> dict[str, Any]:
    """The ``istio-waypoint`` GatewayClass, created when missing."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": L.WAYPOINT_CLASS},
        "spec": {
            "controllerName": "istio.io/mesh-controller",
            "description": "The default Istio waypoint GatewayClass",
        },
    }
