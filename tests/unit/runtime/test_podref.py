"""Which pod `exec` and `logs` use."""

from __future__ import annotations

from typing import Any

import pytest

from ambientmesh.errors import InvalidInput, NotFound
from ambientmesh.runtime.podref import Target, container_name, parse_target, pick_pod

DEPLOYMENT = {"metadata": {"name": "web", "uid": "d-1"}}


def pod(name: str, *, ready: bool, phase: str = "Running", owner: str = "d-1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "ownerReferences": [{"uid": owner, "controller": True}]},
        "spec": {"containers": [{"name": "app"}, {"name": "sidecar"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_targets() -> None:
    assert parse_target("web-1") == Target(kind="pod", name="web-1")
    assert parse_target("pod/web-1") == Target(kind="pod", name="web-1")
    assert parse_target("deploy/web") == Target(kind="deployment", name="web")
    assert parse_target("deployments/web") == Target(kind="deployment", name="web")
    with pytest.raises(InvalidInput, match="use POD, pod/NAME or deploy/NAME"):
        parse_target("svc/web")


def test_pick_prefers_ready_pods_of_the_deployment() -> None:
    pods = [
        pod("a", ready=False),
        pod("b", ready=True),
        pod("c", ready=True, owner="other"),
    ]
    assert pick_pod(DEPLOYMENT, pods)["metadata"]["name"] == "b"
    assert pick_pod(DEPLOYMENT, [pod("a", ready=False)])["metadata"]["name"] == "a"
    with pytest.raises(NotFound, match='deployment "web" has no running pod'):
        pick_pod(DEPLOYMENT, [pod("a", ready=False, phase="Pending")])


def test_container_choice_like_kubectl() -> None:
    assert container_name(pod("a", ready=True), None) == (
        "app",
        'Defaulted container "app" out of: app, sidecar',
    )
    assert container_name(pod("a", ready=True), "sidecar") == ("sidecar", None)
    with pytest.raises(NotFound, match="container nope is not valid for pod a"):
        container_name(pod("a", ready=True), "nope")
