"""Label and annotation names with meaning to the ambient computation (istio/api labels.yaml)."""

from __future__ import annotations

DATAPLANE_MODE = "istio.io/dataplane-mode"
DATAPLANE_AMBIENT = "ambient"
DATAPLANE_NONE = "none"
REDIRECTION_ANNOTATION = "ambient.istio.io/redirection"
SIDECAR_STATUS_ANNOTATION = "sidecar.istio.io/status"
TUNNEL_LABEL = "networking.istio.io/tunnel"

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
WAYPOINT_FOR = "istio.io/waypoint-for"
FOR_SERVICE_ACCOUNT = "istio.io/for-service-account"
INGRESS_USE_WAYPOINT = "istio.io/ingress-use-waypoint"
WAYPOINT_NONE = "none"

GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
GATEWAY_MANAGED_LABEL = "gateway.istio.io/managed"
GATEWAY_MANAGED_VALUE = "istio.io-mesh-controller"
WAYPOINT_CLASS = "istio-waypoint"

DRY_RUN_ANNOTATION = "istio.io/dry-run"

CANONICAL_NAME_LABELS = ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
CANONICAL_REVISION_LABELS = (
    "service.istio.io/canonical-revision",
    "app.kubernetes.io/version",
    "version",
)
REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
SUBZONE_LABEL = "topology.istio.io/subzone"
POD_TEMPLATE_HASH = "pod-template-hash"
