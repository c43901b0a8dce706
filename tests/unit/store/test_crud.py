"""Create, get, update and status updates follow the Kubernetes API's object rules."""

from __future__ import annotations

import uuid

import pytest

from ambientmesh.errors import AlreadyExists, Conflict, InvalidInput, NotFound, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.store.store import BOOTSTRAP_NAMESPACES, Store
from ambientmesh.testing.clock import FakeClock
from tests.unit.store.builders import account, namespace, pod

POD = kinds.lookup("v1", "Pod")
NAMESPACE = kinds.lookup("v1", "Namespace")
POLICY = kinds.lookup("security.istio.io/v1", "AuthorizationPolicy")


def test_create_assigns_server_fields(store: Store, clock: FakeClock) -> None:
    clock.advance(90)
    before = store.resource_version
    created = store.create(pod("web"))
    meta = created["metadata"]
    assert uuid.UUID(meta["uid"]).version == 4
    assert meta["resourceVersion"] == str(before + 1)
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2026-01-01T00:01:30Z"
    assert store.get(POD, "web", "default") == created


def test_resource_versions_strictly_increase_across_kinds(store: Store) -> None:
    versions = [
        int(store.create(obj)["metadata"]["resourceVersion"])
        for obj in (pod("a"), account("a"), pod("b"), namespace("extra"))
    ]
    assert versions == sorted(versions)
    assert len(set(versions)) == 4
    assert store.resource_version == versions[-1]


def test_create_of_existing_object_is_already_exists(store: Store) -> None:
    store.create(pod("web"))
    with pytest.raises(AlreadyExists, match='pods "web" already exists'):
        store.create(pod("web"))


def test_bootstrap_namespaces_exist(store: Store) -> None:
    names = {obj["metadata"]["name"] for obj in store.list(NAMESPACE).items}
    assert names >= set(BOOTSTRAP_NAMESPACES)


def test_namespaced_object_needs_its_namespace(store: Store) -> None:
    with pytest.raises(NotFound, match='namespaces "nowhere" not found'):
        store.create(pod("web", "nowhere"))


def test_namespace_defaults_to_default(store: Store) -> None:
    created = store.create(pod("web", namespace=None))
    assert created["metadata"]["namespace"] == "default"


def test_cluster_scoped_object_drops_a_namespace(store: Store) -> None:
    obj = namespace("prod")
    obj["metadata"]["namespace"] = "default"
    created = store.create(obj)
    assert "namespace" not in created["metadata"]


def test_create_with_resource_version_is_rejected(store: Store) -> None:
    obj = pod("web")
    obj["metadata"]["resourceVersion"] = "12"
    with pytest.raises(InvalidInput, match="resourceVersion must not be set"):
        store.create(obj)


def test_invalid_object_is_rejected_with_its_field_path(store: Store) -> None:
    obj = pod("web")
    obj["metadata"]["name"] = "Not_Valid"
    with pytest.raises(ValidationFailed) as caught:
        store.create(obj)
    assert "metadata.name" in caught.value.message
    with pytest.raises(NotFound):
        store.get(POD, "Not_Valid")


def test_objects_of_another_version_share_storage(store: Store) -> None:
    policy = {
        "apiVersion": "security.istio.io/v1beta1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny", "namespace": "default"},
        "spec": {"action": "DENY", "rules": [{}]},
    }
    created = store.create(policy)
    assert created["apiVersion"] == "security.istio.io/v1"
    assert store.get(POLICY, "deny")["spec"] == policy["spec"]


def test_generate_name_draws_a_free_name(store: Store) -> None:
    obj = pod("ignored")
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "web-"
    first = store.create(obj)["metadata"]["name"]
    second = store.create(obj)["metadata"]["name"]
    assert first.startswith("web-")
    assert len(first) == len("web-") + 5
    assert first != second


def test_update_with_stale_resource_version_is_a_conflict(store: Store) -> None:
    created = store.create(pod("web"))
    first = {**created, "metadata": {**created["metadata"], "labels": {"v": "1"}}}
    store.update(first)
    stale = {**created, "metadata": {**created["metadata"], "labels": {"v": "2"}}}
    with pytest.raises(Conflict) as caught:
        store.update(stale)
    assert caught.value.message == (
        'Operation cannot be fulfilled on pods "web": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert store.get(POD, "web")["metadata"]["labels"] == {"v": "1"}


def test_update_without_resource_version_overwrites(store: Store) -> None:
    store.create(pod("web"))
    blind = pod("web", app="new")
    updated = store.update(blind)
    assert updated["metadata"]["labels"] == {"app": "new"}


def test_update_with_other_uid_is_a_conflict(store: Store) -> None:
    store.create(pod("web"))
    obj = pod("web")
    obj["metadata"]["uid"] = str(uuid.uuid4())
    with pytest.raises(Conflict, match="Precondition failed: UID"):
        store.update(obj)


def test_update_of_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        store.update(pod("ghost"))


def test_generation_counts_spec_changes_only(store: Store) -> None:
    created = store.create(pod("web"))
    relabelled = store.update(
        {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
    )
    assert relabelled["metadata"]["generation"] == 1
    spec = {"containers": [{"name": "app", "image": "example/app:2"}]}
    changed = store.update({**relabelled, "spec": spec})
    assert changed["metadata"]["generation"] == 2
    status = store.update_status({**changed, "status": {"phase": "Running"}})
    assert status["metadata"]["generation"] == 2


def test_update_keeps_immutable_server_fields(store: Store, clock: FakeClock) -> None:
    created = store.create(pod("web"))
    clock.advance(3600)
    forged = {
        **created,
        "metadata": {
            **created["metadata"],
            "creationTimestamp": "1999-01-01T00:00:00Z",
            "generation": 99,
            "labels": {"x": "y"},
        },
    }
    updated = store.update(forged)
    for field in ("uid", "creationTimestamp", "name", "namespace"):
        assert updated["metadata"][field] == created["metadata"][field]
    assert updated["metadata"]["generation"] == 1


def test_update_ignores_status_and_update_status_changes_only_status(store: Store) -> None:
    created = store.create(pod("web"))
    assert created["status"] == {"phase": "Pending"}
    sneaky = {**created, "status": {"phase": "Running"}}
    assert store.update(sneaky)["status"] == {"phase": "Pending"}
    current = store.get(POD, "web")
    both = {
        **current,
        "metadata": {**current["metadata"], "labels": {"ignored": "yes"}},
        "spec": {"containers": [{"name": "other", "image": "x"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.5"},
    }
    updated = store.update_status(both)
    assert updated["status"] == {"phase": "Running", "podIP": "10.0.0.5"}
    assert updated["spec"] == current["spec"]
    assert "labels" not in updated["metadata"]


def test_update_status_checks_resource_version(store: Store) -> None:
    created = store.create(pod("web"))
    store.update_status({**created, "status": {"phase": "Running"}})
    with pytest.raises(Conflict):
        store.update_status({**created, "status": {"phase": "Failed"}})


def test_kind_without_status_subresource_keeps_status_on_update(store: Store) -> None:
    created = store.create(account("web"))
    with pytest.raises(NotFound, match="no status subresource"):
        store.update_status(created)


def test_create_clears_status_of_a_kind_with_status_subresource(store: Store) -> None:
    """Kubernetes' strategies reset status on create; it is written through /status."""
    obj = {**pod("web"), "status": {"phase": "Succeeded"}}
    assert store.create(obj)["status"] == {"phase": "Pending"}


def test_noop_update_writes_nothing(store: Store) -> None:
    created = store.create(pod("web"))
    rv = store.resource_version
    again = store.update(created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert store.resource_version == rv


def test_get_of_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match='pods "nope" not found'):
        store.get(POD, "nope")


def test_store_survives_reopen(tmp_path: object, clock: FakeClock) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "reopen.db"
    with Store(path, clock=clock) as first:
        created = first.create(pod("web"))
        rv = first.resource_version
    with Store(path, clock=clock) as second:
        assert second.get(POD, "web") == created
        assert second.resource_version == rv
        assert int(second.create(pod("next"))["metadata"]["resourceVersion"]) == rv + 1


def test_a_store_file_has_one_owner(store: Store, clock: FakeClock) -> None:
    from ambientmesh.errors import Unavailable

    with pytest.raises(Unavailable, match="in use by process"):
        Store(store.path, clock=clock)
