"""Deployment decisions: pods named <deploy>-<hash>-<suffix>, scaling, RollingUpdate, Recreate."""

from __future__ import annotations

from typing import Any

from ambientmesh.runtime.controllers.deployment import HASH_LABEL, decide
from ambientmesh.runtime.controllers.pods import PodSummary, template_hash

NOW = "2026-01-01T00:00:00Z"


def deployment(replicas: int = 2, *, image_arg: str = "v1", **strategy: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "command": ["serve", image_arg]}]},
    }
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": template,
    }
    if strategy:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d-1", "generation": 3},
        "spec": spec,
    }


def current_hash(obj: dict[str, Any]) -> str:
    return template_hash(obj["spec"]["template"])


def pod(
    name: str, hash_: str, *, ready: bool = True, created: str = NOW, **extra: Any
) -> PodSummary:
    return PodSummary(
        name=name, phase=extra.pop("phase", "Running"), ready=ready, bound=True,
        labels={"app": "web", HASH_LABEL: hash_}, created=created, **extra,
    )  # fmt: skip


def test_new_pods_are_named_labelled_and_owned_like_kubernetes() -> None:
    obj = deployment()
    plan = decide(obj, [], now=NOW)
    assert plan.create == 2
    assert plan.delete == ()
    metadata = plan.pod["metadata"]
    hash_ = current_hash(obj)
    assert len(hash_) == 10
    assert metadata["generateName"] == f"web-{hash_}-"
    assert metadata["labels"] == {"app": "web", HASH_LABEL: hash_}
    assert metadata["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1",
         "controller": True, "blockOwnerDeletion": True}
    ]  # fmt: skip
    assert plan.pod["spec"] == obj["spec"]["template"]["spec"]


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    assert current_hash(deployment()) == current_hash(deployment())
    assert current_hash(deployment()) != current_hash(deployment(image_arg="v2"))


def test_scale_down_removes_unready_then_newest() -> None:
    obj = deployment(replicas=1)
    h = current_hash(obj)
    pods = [
        pod("old-ready", h, created="2026-01-01T00:00:00Z"),
        pod("new-ready", h, created="2026-01-01T00:00:09Z"),
        pod("not-ready", h, ready=False),
    ]
    assert decide(obj, pods, now=NOW).delete == ("not-ready", "new-ready")


def test_status_counts_and_failed_pods_are_replaced() -> None:
    obj = deployment(replicas=2)
    h = current_hash(obj)
    pods = [pod("a", h), pod("b", h, ready=False), pod("c", h, phase="Failed", ready=False)]
    plan = decide(obj, pods, now=NOW)
    assert plan.delete == ("c",)
    assert plan.create == 0  # a and b are the two replicas; c is removed
    status = plan.status
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 1, 2)
    assert status["observedGeneration"] == 3
    assert status["unavailableReplicas"] == 1


def test_rolling_update_surges_first_then_retires_old_pods_as_new_ones_get_ready() -> None:
    # Kubernetes' defaults for 2 replicas: maxSurge 25% -> 1, maxUnavailable 25% -> 0.
    obj = deployment(replicas=2, image_arg="v2")
    new = current_hash(obj)
    old = [pod("old-1", "h-old"), pod("old-2", "h-old")]
    step = decide(obj, old, now=NOW)
    assert (step.create, step.delete) == (1, ())
    step = decide(obj, [*old, pod("new-1", new, ready=False)], now=NOW)
    assert (step.create, step.delete) == (0, ())
    step = decide(obj, [*old, pod("new-1", new)], now=NOW)
    assert (step.create, len(step.delete)) == (0, 1)
    step = decide(obj, [old[0], pod("new-1", new)], now=NOW)
    assert (step.create, step.delete) == (1, ())
    step = decide(obj, [old[0], pod("new-1", new), pod("new-2", new)], now=NOW)
    assert step.delete == ("old-1",)
    done = decide(obj, [pod("new-1", new), pod("new-2", new)], now=NOW)
    assert (done.create, done.delete) == (0, ())
    assert {c["type"]: c["reason"] for c in done.status["conditions"]}["Progressing"] == (
        "NewReplicaSetAvailable"
    )


def test_unready_old_pods_go_first_within_the_budget() -> None:
    obj = deployment(
        replicas=2,
        image_arg="v2",
        type="RollingUpdate",
        rollingUpdate={"maxSurge": 0, "maxUnavailable": 1},
    )
    pods = [pod("old-ok", "h-old"), pod("old-bad", "h-old", ready=False)]
    assert decide(obj, pods, now=NOW).delete == ("old-bad",)


def test_recreate_removes_old_pods_and_waits_for_them_to_go() -> None:
    obj = deployment(replicas=1, image_arg="v2", type="Recreate")
    plan = decide(obj, [pod("old", "h-old")], now=NOW)
    assert (plan.create, plan.delete) == (0, ("old",))
    terminating = PodSummary(name="old", deleting=True, labels={HASH_LABEL: "h-old"})
    assert decide(obj, [terminating], now=NOW).create == 0
    assert decide(obj, [], now=NOW).create == 1
