"""What `ambientmesh up` waits for, and what it gives up on."""

from __future__ import annotations

from typing import Any

from ambientmesh.runtime.readiness import verdict


def pod(name: str, phase: str = "Running", *, ready: bool = True, owner: str | None = None,
        waiting: str | None = None, unschedulable: bool = False) -> dict[str, Any]:  # fmt: skip
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        metadata["ownerReferences"] = [{"kind": owner, "name": "o", "controller": True}]
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions = [
            {"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available"}
        ]
    statuses = [
        {"name": "c", "state": {"waiting": {"reason": waiting}} if waiting else {"running": {}}}
    ]
    return {
        "metadata": metadata,
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": statuses},
    }


def deployment(
    replicas: int, ready: int, *, generation: int = 1, observed: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "default", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "replicas": replicas,
                   "updatedReplicas": replicas, "readyReplicas": ready},
    }  # fmt: skip


def test_everything_ready() -> None:
    result = verdict([pod("a"), pod("done", "Succeeded", ready=False)], [deployment(2, 2)])
    assert result.ready
    assert (result.pods_ready, result.pods_total) == (2, 2)


def test_job_pods_are_not_waited_for() -> None:
    assert verdict([pod("j", "Pending", ready=False, owner="Job")], []).ready


def test_reasons_for_waiting() -> None:
    result = verdict(
        [pod("a", "Pending", ready=False, waiting="ContainerCreating"), pod("b", ready=False)],
        [deployment(2, 1), deployment(1, 0, generation=2, observed=1)],
    )
    assert [(w.what, w.why) for w in result.waiting] == [
        ("pod default/a", "c: ContainerCreating"),
        ("pod default/b", "running, not ready yet"),
        ("deployment default/web", "1/2 ready"),
        ("deployment default/web", "rollout not started"),
    ]
    assert not result.stuck


def test_stuck_when_only_hopeless_pods_remain() -> None:
    stuck = verdict(
        [pod("a", "Pending", ready=False, unschedulable=True),
         pod("b", "Pending", ready=False, waiting="CreateContainerConfigError")], []
    )  # fmt: skip
    assert stuck.stuck
    assert [w.why for w in stuck.waiting] == [
        "0/2 nodes are available",
        "c: CreateContainerConfigError",
    ]
    crash = verdict([pod("c", ready=False, waiting="CrashLoopBackOff")], [])
    assert not crash.stuck  # it may still come up
