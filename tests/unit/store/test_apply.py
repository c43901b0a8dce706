"""Batch apply: all objects in one transaction, all or nothing, every problem reported."""

from __future__ import annotations

import pytest

from ambientmesh.errors import NotFound, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.store.store import Store
from tests.unit.store.builders import account, namespace, pod, service

POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")
NAMESPACE = kinds.lookup("v1", "Namespace")


def actions(results: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{r.kind}/{r.name} {r.action}" for r in results]


def test_apply_creates_then_reports_unchanged_then_configured(store: Store) -> None:
    batch = [pod("web", app="web"), service("web")]
    assert actions(store.apply(batch)) == ["Pod/web created", "Service/web created"]
    assert actions(store.apply(batch)) == ["Pod/web unchanged", "Service/web unchanged"]
    changed = [pod("web", app="web", tier="front"), service("web")]
    assert actions(store.apply(changed)) == ["Pod/web configured", "Service/web unchanged"]
    assert store.get(POD, "web")["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_configure_replaces_user_fields_and_keeps_server_ones(store: Store) -> None:
    store.apply([service("web")])
    before = store.get(SERVICE, "web")
    store.update_status({**before, "status": {"loadBalancer": {}}})
    manifest = service("web", type="ClusterIP")
    manifest["metadata"]["annotations"] = {"note": "x"}
    store.apply([manifest])
    after = store.get(SERVICE, "web")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["creationTimestamp"] == before["metadata"]["creationTimestamp"]
    assert after["metadata"]["annotations"] == {"note": "x"}
    assert after["metadata"]["generation"] == 2
    assert after["spec"]["type"] == "ClusterIP"
    assert after["spec"]["clusterIP"] == before["spec"]["clusterIP"]  # kept, as Kubernetes does
    assert after["status"] == {"loadBalancer": {}}


def test_one_invalid_document_applies_nothing_and_every_problem_is_reported(store: Store) -> None:
    rv = store.resource_version
    bad_name = pod("Bad_Name")
    no_spec = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}}
    unknown = {"apiVersion": "v1", "kind": "Gizmo", "metadata": {"name": "g"}}
    with pytest.raises(ValidationFailed) as caught:
        store.apply([pod("good"), bad_name, no_spec, unknown, service("fine")])
    issues = caught.value.issues
    assert any(i.startswith("items[1]: Pod default/Bad_Name: metadata.name") for i in issues)
    assert any(i.startswith("items[2]: Pod default/empty: spec") for i in issues)
    assert any(i.startswith("items[3]:") and "Gizmo" in i for i in issues)
    assert store.resource_version == rv
    with pytest.raises(NotFound):
        store.get(POD, "good")


def test_a_failure_while_writing_rolls_back_the_whole_batch(store: Store) -> None:
    store.create(service("taken", clusterIP="10.96.0.50"))
    rv = store.resource_version
    clash = service("clash", clusterIP="10.96.0.50")
    with pytest.raises(ValidationFailed) as caught:
        store.apply([pod("first"), clash, pod("elsewhere", "missing")])
    text = "\n".join(caught.value.issues)
    assert "items[1]: Service default/clash: spec.clusterIP" in text
    assert "already allocated" in text
    assert 'items[2]: namespaces "missing" not found' in text
    assert store.resource_version == rv
    with pytest.raises(NotFound):
        store.get(POD, "first")


def test_a_batch_may_bring_its_own_namespace(store: Store) -> None:
    results = store.apply([pod("web", "team"), namespace("team")])
    assert actions(results) == ["Pod/web created", "Namespace/team created"]


def test_dry_run_reports_and_writes_nothing(store: Store) -> None:
    store.apply([pod("web")])
    rv = store.resource_version
    results = store.apply([pod("web", app="x"), account("new")], dry_run=True)
    assert actions(results) == ["Pod/web configured", "ServiceAccount/new created"]
    assert store.resource_version == rv
    assert "labels" not in store.get(POD, "web")["metadata"]


def test_the_same_object_twice_is_rejected(store: Store) -> None:
    with pytest.raises(ValidationFailed, match=r"appears twice in the batch \(also items\[0\]\)"):
        store.apply([pod("web"), pod("web", app="x")])


def test_apply_ignores_a_resource_version_in_the_manifest(store: Store) -> None:
    exported = pod("web")
    exported["metadata"]["resourceVersion"] = "1"
    assert actions(store.apply([exported])) == ["Pod/web created"]
