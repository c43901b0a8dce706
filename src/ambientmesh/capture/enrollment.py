"""Is a pod captured? The node agent's enrollment predicate (reference 2.7), pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DATAPLANE_MODE_LABEL = "istio.io/dataplane-mode"
DATAPLANE_MODE_AMBIENT = "ambient"
DATAPLANE_MODE_NONE = "none"
SIDECAR_STATUS_ANNOTATION = "sidecar.istio.io/status"
DEFAULT_EXCLUDED_NAMESPACES = frozenset({"kube-system"})


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentFacts:
    """What the predicate reads about a pod and its namespace."""

    namespace: str
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    # Pods sharing the node's network namespace have no namespace of their own to capture in.
    host_network: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrollment:
    captured: bool
    reason: str


def enrollment(
    facts: EnrollmentFacts,
    *,
    excluded_namespaces: frozenset[str] = DEFAULT_EXCLUDED_NAMESPACES,
) -> Enrollment:
    """Decide capture. The first rule that applies wins; the reason says which one it was."""
    if facts.namespace in excluded_namespaces:
        return Enrollment(
            captured=False, reason=f"namespace {facts.namespace} is excluded from ambient"
        )
    if facts.host_network:
        return Enrollment(captured=False, reason="pod uses the host network")
    if SIDECAR_STATUS_ANNOTATION in facts.pod_annotations:
        return Enrollment(captured=False, reason="pod has an injected sidecar")
    pod_mode = facts.pod_labels.get(DATAPLANE_MODE_LABEL)
    # `none` on the pod opts out; waypoint pods carry it so ztunnel never captures them.
    if pod_mode == DATAPLANE_MODE_NONE:
        return Enrollment(captured=False, reason=f"pod label {DATAPLANE_MODE_LABEL}=none")
    if pod_mode == DATAPLANE_MODE_AMBIENT:
        return Enrollment(captured=True, reason=f"pod label {DATAPLANE_MODE_LABEL}=ambient")
    if facts.namespace_labels.get(DATAPLANE_MODE_LABEL) == DATAPLANE_MODE_AMBIENT:
        return Enrollment(captured=True, reason=f"namespace label {DATAPLANE_MODE_LABEL}=ambient")
    return Enrollment(captured=False, reason="neither pod nor namespace is labelled ambient")


def is_captured(
    facts: EnrollmentFacts, *, excluded_namespaces: frozenset[str] = DEFAULT_EXCLUDED_NAMESPACES
) -> bool:
    return enrollment(facts, excluded_namespaces=excluded_namespaces).captured
