"""The Deployment controller's decision: which pods to create and delete, and the status; pure.

The local runtime has no ReplicaSets: a Deployment owns its pods directly. Each pod carries the
`pod-template-hash` of the template it was made from and is named `<deployment>-<hash>-<xxxxx>`,
as Kubernetes names them. A template change rolls out as Kubernetes' RollingUpdate does, within
`maxSurge` (default 25%, rounded up) extra pods and `maxUnavailable` (default 25%, rounded down)
missing ready pods; `Recreate` removes every old pod before creating new ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ambientmesh.runtime.controllers.pods import (
    PodSummary,
    condition,
    pod_from_template,
    template_hash,
    with_times,
)

HASH_LABEL = "pod-template-hash"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentPlan:
    create: int = 0
    pod: dict[str, Any] = field(default_factory=dict)  # the manifest to create `create` times
    delete: tuple[str, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)


def decide(
    deployment: Mapping[str, Any], pods: Sequence[PodSummary], *, now: str
) -> DeploymentPlan:
    """What to do for `deployment`, given the pods it owns (found by owner reference)."""
    spec = _map(deployment.get("spec"))
    replicas = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    current = template_hash(_map(spec.get("template")))
    active = [pod for pod in pods if pod.active]
    failed = [pod.name for pod in pods if not pod.deleting and pod.phase == "Failed"]
    new = [pod for pod in active if pod.labels.get(HASH_LABEL) == current]
    old = [pod for pod in active if pod.labels.get(HASH_LABEL) != current]
    strategy = _map(spec.get("strategy"))
    if strategy.get("type") == "Recreate":
        create, delete = _recreate(replicas, new, old, terminating=any(p.deleting for p in pods))
    else:
        surge, unavailable = _budgets(_map(strategy.get("rollingUpdate")), replicas)
        create, delete = _rolling(replicas, new, old, surge, unavailable)
    name = str(_map(deployment.get("metadata")).get("name"))
    pod = pod_from_template(
        deployment, generate_name=f"{name}-{current}-", extra_labels={HASH_LABEL: current}
    )
    return DeploymentPlan(
        create=create,
        pod=pod,
        delete=tuple(failed) + tuple(delete),
        status=_status(deployment, replicas, active, new, now),
    )


def _recreate(
    replicas: int, new: list[PodSummary], old: list[PodSummary], *, terminating: bool
) -> tuple[int, list[str]]:
    if old:
        return 0, [pod.name for pod in old]
    if terminating:
        return 0, []  # Recreate waits until the old pods are really gone
    return _scale(replicas, new)


def _rolling(
    replicas: int, new: list[PodSummary], old: list[PodSummary], surge: int, unavailable: int
) -> tuple[int, list[str]]:
    if not old:
        return _scale(replicas, new)
    total = len(new) + len(old)
    create = max(0, min(replicas - len(new), replicas + surge - total))
    # Old pods may go while enough pods stay ready; unready ones first (they serve nothing).
    budget = total - (replicas - unavailable) - sum(1 for pod in new if not pod.ready)
    delete = []
    for pod in sorted(old, key=_deletion_order):
        if budget <= 0:
            break
        delete.append(pod.name)
        budget -= 1
    surplus = len(new) - replicas
    if surplus > 0:
        delete += [pod.name for pod in sorted(new, key=_deletion_order)[:surplus]]
    return create, delete


def _scale(replicas: int, pods: list[PodSummary]) -> tuple[int, list[str]]:
    if len(pods) < replicas:
        return replicas - len(pods), []
    extra = len(pods) - replicas
    return 0, [pod.name for pod in sorted(pods, key=_deletion_order)[:extra]]


def _deletion_order(pod: PodSummary) -> tuple[bool, bool, bool, str]:
    # Kubernetes' order: unscheduled, then not running, then not ready, then the newest.
    inverted = "".join(chr(0x10FFFF - ord(c)) for c in pod.created)
    return (pod.bound, pod.phase == "Running", pod.ready, inverted)


def _budgets(rolling: Mapping[str, Any], replicas: int) -> tuple[int, int]:
    surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # Kubernetes refuses both zero; never stall a rollout
    return surge, unavailable


def _resolve(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = float(value[:-1]) * replicas / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(value)


def _status(
    deployment: Mapping[str, Any],
    replicas: int,
    active: list[PodSummary],
    new: list[PodSummary],
    now: str,
) -> dict[str, Any]:
    ready = sum(1 for pod in active if pod.ready)
    updated_ready = sum(1 for pod in new if pod.ready)
    complete = len(new) == replicas == len(active) and updated_ready == replicas
    previous = _map(deployment.get("status"))
    conditions = [
        condition(
            "Available",
            ready >= replicas - _budgets(_rolling_of(deployment), replicas)[1],
            reason="MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
            message="Deployment has minimum availability."
            if ready
            else "Deployment does not have minimum availability.",
        ),
        condition(
            "Progressing",
            True,
            reason="NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            message="pods are up to date and ready" if complete else "rollout in progress",
        ),
    ]
    metadata = _map(deployment.get("metadata"))
    status: dict[str, Any] = {
        "observedGeneration": metadata.get("generation", 1),
        "replicas": len(active),
        "updatedReplicas": len(new),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": with_times(
            conditions, previous.get("conditions"), now, probe_field="lastUpdateTime"
        ),
    }
    if replicas - ready > 0:
        status["unavailableReplicas"] = replicas - ready
    return status


def _rolling_of(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_map(_map(deployment.get("spec")).get("strategy")).get("rollingUpdate"))


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
