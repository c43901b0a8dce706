"""The in-place edits the runtime makes before writing an object back."""

from __future__ import annotations

from typing import Any

from ambientmesh.runtime.writes import add_finalizer, remove_finalizer, set_annotations


def test_annotations_set_remove_and_report_changes() -> None:
    obj: dict[str, Any] = {"metadata": {"annotations": {"keep": "1", "drop": "2"}}}
    assert set_annotations(obj, {"drop": None, "new": "3"})
    assert obj["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert not set_annotations(obj, {"new": "3", "absent": None})
    assert set_annotations(obj, {"keep": None, "new": None})
    assert "annotations" not in obj["metadata"]


def test_finalizers() -> None:
    obj: dict[str, Any] = {"metadata": {"finalizers": ["other"]}}
    assert add_finalizer(obj, "ours")
    assert not add_finalizer(obj, "ours")
    assert obj["metadata"]["finalizers"] == ["other", "ours"]
    assert remove_finalizer(obj, "ours")
    assert not remove_finalizer(obj, "ours")
    assert remove_finalizer(obj, "other")
    assert "finalizers" not in obj["metadata"]


def test_no_finalizer_is_added_to_an_object_being_deleted() -> None:
    # The API server refuses it (metadata.finalizers: no new finalizers can be added).
    obj: dict[str, Any] = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert not add_finalizer(obj, "ours")
