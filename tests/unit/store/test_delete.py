"""Deletion: finalizers hold an object back; ownerReferences and namespaces cascade."""

from __future__ import annotations

from typing import Any

import pytest

from ambientmesh.errors import NotFound, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.store.semantics import Forbidden
from ambientmesh.store.store import Store
from tests.unit.store.builders import account, namespace, pod

POD = kinds.lookup("v1", "Pod")
ACCOUNT = kinds.lookup("v1", "ServiceAccount")
NAMESPACE = kinds.lookup("v1", "Namespace")


def owned_by(obj: dict[str, Any], *owners: dict[str, Any]) -> dict[str, Any]:
    refs = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        for owner in owners
    ]
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": refs}}


def history(store: Store, since: int, kind: str = "Pod") -> list[tuple[str, str]]:
    events, _ = store.events_after(since, group="", kind=kind)
    return [(event.type, event.name) for event in events]


def test_delete_removes_and_returns_the_object(store: Store) -> None:
    store.create(pod("web"))
    rv = store.resource_version
    deleted = store.delete(POD, "web", "default")
    assert deleted["metadata"]["resourceVersion"] == str(rv + 1)
    with pytest.raises(NotFound):
        store.get(POD, "web")
    assert history(store, rv) == [("DELETED", "web")]


def test_delete_of_missing_object_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        store.delete(POD, "ghost")


def test_finalizers_hold_the_object_until_they_are_removed(store: Store) -> None:
    obj = pod("web")
    obj["metadata"]["finalizers"] = ["example.com/cleanup"]
    store.create(obj)
    rv = store.resource_version
    marked = store.delete(POD, "web")
    assert marked["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"
    assert store.get(POD, "web")["metadata"]["deletionTimestamp"]
    again = store.delete(POD, "web")  # deleting again changes nothing
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    assert history(store, rv) == [("MODIFIED", "web")]
    current = store.get(POD, "web")
    released = {**current, "metadata": {**current["metadata"], "finalizers": []}}
    store.update(released)
    with pytest.raises(NotFound):
        store.get(POD, "web")
    assert history(store, rv) == [("MODIFIED", "web"), ("DELETED", "web")]


def test_no_new_finalizers_while_deleting(store: Store) -> None:
    obj = pod("web")
    obj["metadata"]["finalizers"] = ["a"]
    store.create(obj)
    marked = store.delete(POD, "web")
    more = {**marked, "metadata": {**marked["metadata"], "finalizers": ["a", "b"]}}
    with pytest.raises(ValidationFailed, match="no new finalizers"):
        store.update(more)


def test_deleting_an_owner_deletes_its_dependents_recursively(store: Store) -> None:
    owner = store.create(account("owner"))
    child = store.create(owned_by(pod("child"), owner))
    store.create(owned_by(pod("grandchild"), child))
    store.create(pod("bystander"))
    rv = store.resource_version
    store.delete(ACCOUNT, "owner")
    remaining = {obj["metadata"]["name"] for obj in store.list(POD).items}
    assert remaining == {"bystander"}
    assert history(store, rv) == [("DELETED", "child"), ("DELETED", "grandchild")]


def test_dependent_with_another_live_owner_survives_without_the_reference(store: Store) -> None:
    first = store.create(account("first"))
    second = store.create(account("second"))
    store.create(owned_by(pod("shared"), first, second))
    store.delete(ACCOUNT, "first")
    survivor = store.get(POD, "shared")
    assert [ref["name"] for ref in survivor["metadata"]["ownerReferences"]] == ["second"]
    store.delete(ACCOUNT, "second")
    with pytest.raises(NotFound):
        store.get(POD, "shared")


def test_dependent_with_finalizers_is_only_marked(store: Store) -> None:
    owner = store.create(account("owner"))
    child = owned_by(pod("child"), owner)
    child["metadata"]["finalizers"] = ["hold"]
    store.create(child)
    store.delete(ACCOUNT, "owner")
    assert store.get(POD, "child")["metadata"]["deletionTimestamp"]


def test_garbage_collection_happens_in_the_same_transaction(store: Store) -> None:
    owner = store.create(account("owner"))
    store.create(owned_by(pod("child"), owner))
    rv = store.resource_version
    (outcome,) = store.write([lambda txn: txn.delete(ACCOUNT, "owner", "default")])
    assert [event.rv for event in outcome.events] == [rv + 1, rv + 2]
    assert [event.name for event in outcome.events] == ["owner", "child"]


def test_deleting_a_namespace_deletes_its_contents(store: Store) -> None:
    store.create(namespace("team"))
    store.create(pod("a", "team"))
    store.create(account("b", "team"))
    store.create(pod("elsewhere"))
    store.delete(NAMESPACE, "team")
    assert [obj["metadata"]["name"] for obj in store.list(POD).items] == ["elsewhere"]
    assert store.list(ACCOUNT, "team").items == []


def test_no_creation_in_a_terminating_namespace(store: Store) -> None:
    ns = namespace("team")
    ns["metadata"]["finalizers"] = ["hold"]
    store.create(ns)
    store.delete(NAMESPACE, "team")
    with pytest.raises(Forbidden, match="being terminated"):
        store.create(pod("late", "team"))
