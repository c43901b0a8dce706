"""Lists by kind, namespace, label selector and field selector."""

from __future__ import annotations

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.resources import kinds
from ambientmesh.store.fields import parse_field_selector
from ambientmesh.store.store import Store
from tests.unit.store.builders import account, namespace, pod

POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")


@pytest.fixture
def populated(store: Store) -> Store:
    store.create(namespace("prod"))
    store.create(pod("web-1", "default", app="web", tier="front"))
    store.create(pod("web-2", "prod", app="web"))
    store.create(pod("db", "prod", app="db"))
    store.create(account("web"))
    bound = store.get(POD, "web-2", "prod")
    store.update({**bound, "spec": {**bound["spec"], "nodeName": "node-1"}})
    running = store.get(POD, "db", "prod")
    store.update_status({**running, "status": {"phase": "Running"}})
    return store


def names(store: Store, namespace: str | None = None, **selectors: str) -> list[str]:
    listed = store.list(POD, namespace, **selectors)
    return [obj["metadata"]["name"] for obj in listed.items]


def test_list_by_kind_and_namespace(populated: Store) -> None:
    assert names(populated) == ["web-1", "db", "web-2"]  # ordered by namespace, then name
    assert names(populated, "prod") == ["db", "web-2"]
    assert names(populated, "empty") == []


def test_list_carries_the_current_resource_version(populated: Store) -> None:
    listed = populated.list(POD, "prod")
    assert listed.resource_version == str(populated.resource_version)


def test_label_selectors(populated: Store) -> None:
    assert names(populated, label_selector="app=web") == ["web-1", "web-2"]
    assert names(populated, label_selector="app=web,tier=front") == ["web-1"]
    assert names(populated, label_selector="app!=web") == ["db"]
    assert names(populated, label_selector="app in (db, cache)") == ["db"]
    assert names(populated, label_selector="!tier") == ["db", "web-2"]


def test_malformed_label_selector_is_invalid_input(populated: Store) -> None:
    with pytest.raises(InvalidInput):
        populated.list(POD, label_selector="app in (web")


def test_field_selectors(populated: Store) -> None:
    assert names(populated, field_selector="spec.nodeName=node-1") == ["web-2"]
    assert names(populated, field_selector="spec.nodeName==node-1") == ["web-2"]
    assert names(populated, field_selector="spec.nodeName=") == ["web-1", "db"]
    assert names(populated, field_selector="status.phase!=Pending") == ["db"]
    assert names(populated, field_selector="metadata.name=db") == ["db"]
    assert names(populated, field_selector="metadata.namespace=prod") == ["db", "web-2"]
    assert names(populated, field_selector="metadata.namespace!=prod") == ["web-1"]
    both = "status.phase=Pending,metadata.namespace=prod"
    assert names(populated, field_selector=both) == ["web-2"]


def test_unsupported_field_is_rejected_like_kubernetes(populated: Store) -> None:
    with pytest.raises(InvalidInput, match=r'field label not supported: "spec\.nodeName"'):
        populated.list(SERVICE, field_selector="spec.nodeName=x")


@pytest.mark.parametrize("text", ["spec.nodeName", "=x", "spec.nodeName~x"])
def test_malformed_field_selector(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_field_selector(text, group="", kind="Pod")


def test_field_selector_values_may_escape_separators() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b", group="", kind="Pod")
    assert selector.matches({"metadata.name": "a,b"})
    assert not selector.matches({"metadata.name": "a"})
