"""Is everything up? What `ambientmesh up` waits for, as a pure verdict over the workloads.

Ready means: every Deployment rolled out (its ready, updated replicas equal `replicas`, no old
pods left) and every pod not owned by a Job is Running and Ready (Jobs may still run; a bare
pod that already finished counts as done). A pod that cannot get better by waiting (a container
configuration error, no node that fits) is "stuck": `up` stops waiting when only those remain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STUCK_REASONS = frozenset({"CreateContainerConfigError", "Unschedulable"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    """One thing not ready yet, and why, in a few words."""

    what: str  # "pod default/web-7d9f-x2b4c", "deployment default/web"
    why: str
    stuck: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    waiting: tuple[Waiting, ...]
    pods_ready: int
    pods_total: int

    @property
    def ready(self) -> bool:
        return not self.waiting

    @property
    def stuck(self) -> bool:
        return bool(self.waiting) and all(item.stuck for item in self.waiting)


def verdict(pods: Iterable[Mapping[str, Any]], deployments: Iterable[Mapping[str, Any]]) -> Verdict:
    waiting: list[Waiting] = []
    ready = total = 0
    for pod in pods:
        if _owner_kind(pod) == "Job" or _meta(pod).get("deletionTimestamp"):
            continue
        total += 1
        problem = pod_problem(pod)
        if problem is None:
            ready += 1
        else:
            waiting.append(problem)
    for deployment in deployments:
        problem = _deployment_problem(deployment)
        if problem is not None:
            waiting.append(problem)
    return Verdict(waiting=tuple(waiting), pods_ready=ready, pods_total=total)


def pod_problem(pod: Mapping[str, Any]) -> Waiting | None:
    """Why `pod` is not ready, or None if it is (or finished on its own)."""
    status = _map(pod.get("status"))
    what = f"pod {_meta(pod).get('namespace')}/{_meta(pod).get('name')}"
    phase = status.get("phase") or "Pending"
    if phase in ("Succeeded", "Failed"):
        return None
    conditions = {_map(c).get("type"): _map(c) for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return Waiting(what=what, why=str(scheduled.get("message") or "unschedulable"), stuck=True)
    for container in status.get("containerStatuses") or []:
        waiting = _map(_map(_map(container).get("state")).get("waiting"))
        reason = str(waiting.get("reason") or "")
        if reason:
            message = waiting.get("message")
            why = f"{_map(container).get('name')}: {reason}" + (f" ({message})" if message else "")
            return Waiting(what=what, why=why, stuck=reason in STUCK_REASONS)
    if phase != "Running":
        return Waiting(what=what, why=str(phase))
    if conditions.get("Ready", {}).get("status") != "True":
        return Waiting(what=what, why="running, not ready yet")
    return None


def _deployment_problem(deployment: Mapping[str, Any]) -> Waiting | None:
    spec, status = _map(deployment.get("spec")), _map(deployment.get("status"))
    wanted = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    what = f"deployment {_meta(deployment).get('namespace')}/{_meta(deployment).get('name')}"
    observed = status.get("observedGeneration") or 0
    if observed < (_meta(deployment).get("generation") or 1):
        return Waiting(what=what, why="rollout not started")
    counts = [status.get(key) or 0 for key in ("readyReplicas", "updatedReplicas", "replicas")]
    if counts != [wanted, wanted, wanted]:
        return Waiting(what=what, why=f"{counts[0]}/{wanted} ready")
    return None


def _owner_kind(obj: Mapping[str, Any]) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("kind"))
    return None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(obj.get("metadata"))


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
