"""Status conditions the control plane writes back (pure: facts in, status dicts out).

Condition types follow istiod: ``istio.io/WaypointBound`` on Services, ``ZtunnelAccepted`` on
AuthorizationPolicies, ``Accepted``/``Programmed`` on waypoint Gateways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ambientmesh.controlplane.ambient.authorization import Conversion
from ambientmesh.controlplane.ambient.waypoints import Binding

WAYPOINT_BOUND = "istio.io/WaypointBound"
ZTUNNEL_ACCEPTED = "ZtunnelAccepted"


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def waypoint_condition(binding: Binding | None) -> dict[str, Any] | None:
    if binding is None:
        return None
    return {
        "type": WAYPOINT_BOUND,
        "status": "True" if binding.bound else "False",
        "reason": binding.reason,
        "message": binding.message,
    }


def policy_condition(conversion: Conversion | None) -> dict[str, Any] | None:
    if conversion is None:
        return None
    return {
        "type": ZTUNNEL_ACCEPTED,
        "status": "True" if conversion.accepted else "False",
        "reason": conversion.reason,
        "message": conversion.message,
    }


def conditions_with(
    current: Sequence[Mapping[str, Any]],
    condition: Mapping[str, Any] | None,
    *,
    now: datetime,
    generation: Any = None,
    remove: str | None = None,
) -> list[dict[str, Any]]:
    """``current`` with ``condition`` set (or, if None, the type ``remove`` dropped).

    ``lastTransitionTime`` moves only when the status value changes, as Kubernetes expects.
    """
    kind = condition["type"] if condition is not None else remove
    out = [dict(c) for c in current if c.get("type") != kind]
    if condition is None:
        if kind is None:
            # Nothing to set: drop our condition types if present.
            out = [c for c in out if c.get("type") not in (WAYPOINT_BOUND, ZTUNNEL_ACCEPTED)]
        return out
    previous = next((c for c in current if c.get("type") == kind), None)
    new = dict(condition)
    if isinstance(generation, int):
        new["observedGeneration"] = generation
    if previous is not None and previous.get("status") == new["status"]:
        new["lastTransitionTime"] = previous.get("lastTransitionTime", _timestamp(now))
    else:
        new["lastTransitionTime"] = _timestamp(now)
    if previous is not None and {k: previous.get(k) for k in new} == new:
        return [dict(c) for c in current]
    out.append(new)
    return out


def gateway_status(
    gateway: Mapping[str, Any], *, ready: bool, hostname: str, now: datetime
) -> dict[str, Any]:
    """A waypoint Gateway: Accepted always; Programmed with an address once a pod is ready."""
    status = dict(gateway.get("status") or {})
    generation = (gateway.get("metadata") or {}).get("generation")
    conditions = status.get("conditions") or []
    accepted = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "resources rendered",
    }
    programmed = {
        "type": "Programmed",
        "status": "True" if ready else "False",
        "reason": "Programmed" if ready else "NoReadyPods",
        "message": "a waypoint pod is ready" if ready else "waiting for a waypoint pod to be ready",
    }
    for condition in (accepted, programmed):
        conditions = conditions_with(conditions, condition, now=now, generation=generation)
    status["conditions"] = conditions
    status["addresses"] = [{"type": "Hostname", "value": hostname}] if ready else []
    return status
