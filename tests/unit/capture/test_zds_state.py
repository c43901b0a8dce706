"""ztunnel's pod bookkeeping across ZDS snapshots, as ztunnel's in-pod state manager behaves."""

from __future__ import annotations

import pytest

from ambientmesh.capture.zds_state import StartProxy, StopProxy, WorkloadTracker
from ambientmesh.errors import RemoteProtocolError

NS1, NS2 = (1, 100), (1, 200)


def synced(*uids: str) -> WorkloadTracker:
    tracker = WorkloadTracker()
    tracker.connection_started()
    for uid in uids:
        assert tracker.add(uid, NS1) == (StartProxy(uid=uid),)
        tracker.started(uid, NS1)
    assert tracker.snapshot_sent() == ()
    return tracker


def test_first_snapshot_makes_ready() -> None:
    tracker = WorkloadTracker()
    assert not tracker.ready
    tracker.connection_started()
    assert tracker.snapshot_sent() == ()
    assert tracker.ready


def test_add_in_the_same_namespace_is_idempotent() -> None:
    tracker = synced("a")
    assert tracker.add("a", NS1) == ()


def test_add_in_a_new_namespace_replaces_the_proxy() -> None:
    """A recreated pod sandbox keeps the uid but gets a new netns (ztunnel compares inodes)."""
    tracker = synced("a")
    assert tracker.add("a", NS2) == (StopProxy(uid="a"), StartProxy(uid="a"))


def test_reconnect_snapshot_drops_pods_not_named() -> None:
    tracker = synced("a", "b", "c")
    tracker.connection_started()
    assert tracker.add("a", NS1) == ()
    tracker.keep("c")
    assert tracker.snapshot_sent() == (StopProxy(uid="b"),)
    assert tracker.active == {"a", "c"}


def test_delete_after_snapshot_stops_and_is_idempotent() -> None:
    tracker = synced("a")
    assert tracker.delete("a") == (StopProxy(uid="a"),)
    assert tracker.delete("a") == ()


def test_keep_after_the_snapshot_is_a_protocol_error() -> None:
    tracker = synced()
    with pytest.raises(RemoteProtocolError, match="after the snapshot"):
        tracker.keep("a")


def test_delete_before_the_snapshot_is_a_protocol_error() -> None:
    tracker = WorkloadTracker()
    tracker.connection_started()
    with pytest.raises(RemoteProtocolError, match="before the snapshot"):
        tracker.delete("a")


def test_second_snapshot_sent_on_one_connection_is_a_protocol_error() -> None:
    tracker = synced()
    with pytest.raises(RemoteProtocolError, match="twice"):
        tracker.snapshot_sent()


def test_failed_start_is_pending_until_started_and_blocks_readiness() -> None:
    tracker = WorkloadTracker()
    tracker.connection_started()
    assert tracker.add("a", NS1) == (StartProxy(uid="a"),)
    tracker.failed("a")
    tracker.snapshot_sent()
    assert tracker.pending == {"a"}
    assert not tracker.ready
    tracker.started("a", NS1)
    assert tracker.ready
    assert tracker.active == {"a"}


def test_pending_pod_missing_from_a_new_snapshot_is_forgotten() -> None:
    tracker = synced()
    tracker.add("a", NS1)
    tracker.failed("a")
    tracker.connection_started()
    tracker.snapshot_sent()
    assert tracker.pending == frozenset()
    assert tracker.ready
