"""The change history watches replay: ordered, bounded, and filtered the way watchers see it."""

from __future__ import annotations

import json

import pytest

from ambientmesh.errors import Gone
from ambientmesh.resources import kinds
from ambientmesh.store.events import StoredEvent
from ambientmesh.store.filters import make_filter
from ambientmesh.store.store import Store
from tests.unit.store.builders import account, pod

POD = kinds.lookup("v1", "Pod")


def test_every_change_is_recorded_in_order(store: Store) -> None:
    start = store.resource_version
    created = store.create(pod("web"))
    updated = store.update({**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}})
    store.create(account("other"))  # another kind: not in the Pod history
    store.delete(POD, "web")
    events, current = store.events_after(start, group="", kind="Pod")
    assert [(e.type, e.rv) for e in events] == [
        ("ADDED", start + 1),
        ("MODIFIED", start + 2),
        ("DELETED", start + 4),
    ]
    assert current == start + 4
    assert json.loads(events[1].doc) == updated
    assert events[1].prev_labels == {}
    assert events[1].labels == {"a": "b"}


def test_history_resumes_from_any_retained_version(store: Store) -> None:
    start = store.resource_version
    for index in range(5):
        store.create(pod(f"p{index}"))
    events, _ = store.events_after(start + 3, group="", kind="Pod")
    assert [e.name for e in events] == ["p3", "p4"]


def test_compacted_history_is_gone(small_store: Store) -> None:
    for index in range(30):
        small_store.create(pod(f"p{index}"))
    current = small_store.resource_version
    kept, _ = small_store.events_after(current - 10, group="", kind="Pod")
    assert len(kept) == 10
    with pytest.raises(Gone, match="too old resource version"):
        small_store.events_after(current - 25, group="", kind="Pod")


def test_a_version_from_the_future_is_gone(store: Store) -> None:
    with pytest.raises(Gone, match="newer than this store"):
        store.events_after(store.resource_version + 100, group="", kind="Pod")


def event(
    event_type: str, labels: dict[str, str], prev: dict[str, str] | None = None
) -> StoredEvent:
    return StoredEvent(
        rv=10,
        type=event_type,  # type: ignore[arg-type]
        group="",
        kind="Pod",
        namespace="default",
        name="web",
        labels=labels,
        fields={},
        prev_labels=prev,
        prev_fields={} if prev is not None else None,
        doc="{}",
    )


@pytest.mark.parametrize(
    ("change", "seen"),
    [
        (event("ADDED", {"app": "web"}), "ADDED"),
        (event("ADDED", {"app": "db"}), None),
        (event("MODIFIED", {"app": "web"}, prev={"app": "web"}), "MODIFIED"),
        (event("MODIFIED", {"app": "web"}, prev={"app": "db"}), "ADDED"),
        (event("MODIFIED", {"app": "db"}, prev={"app": "web"}), "DELETED"),
        (event("MODIFIED", {"app": "db"}, prev={"app": "db"}), None),
        (event("DELETED", {"app": "web"}), "DELETED"),
        (event("DELETED", {"app": "db"}), None),
    ],
)
def test_selector_watchers_see_objects_enter_and_leave(change: StoredEvent, seen: str) -> None:
    """As Kubernetes' watch cache: an object that starts matching arrives as ADDED, one that
    stops matching leaves as DELETED."""
    flt = make_filter(POD, label_selector="app=web")
    assert change.seen_as(flt) == seen


def test_other_kinds_and_namespaces_are_invisible() -> None:
    assert event("ADDED", {}).seen_as(make_filter(POD, "prod")) is None
    service = kinds.lookup("v1", "Service")
    assert event("ADDED", {}).seen_as(make_filter(service)) is None
