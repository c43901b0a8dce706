"""ztunnel's side of ZDS as a pure state machine: which pods to proxy, reconciled per snapshot.

Semantics follow ztunnel's in-pod state manager: an Add for a pod already proxied in the same
namespace is a no-op, in a different namespace (sandbox recreated) it replaces the proxy; Keep is
only valid before SnapshotSent and Del only after it; SnapshotSent drops every pod not named since
the connection began. A failed start leaves the pod pending for a retry.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ambientmesh.errors import RemoteProtocolError


@dataclass(frozen=True, slots=True, kw_only=True)
class StartProxy:
    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopProxy:
    uid: str


Step = StartProxy | StopProxy


class WorkloadTracker:
    """Decides proxy starts and stops from ZDS requests; the caller does them and reports back."""

    def __init__(self) -> None:
        self._active: dict[str, Hashable] = {}
        self._pending: set[str] = set()
        self._named: set[str] = set()
        self._snapshot_done = False
        self._ever_synced = False

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    @property
    def ready(self) -> bool:
        """A snapshot has completed at least once and no pod is waiting for a retried start."""
        return self._ever_synced and not self._pending

    def connection_started(self) -> None:
        self._named.clear()
        self._snapshot_done = False

    def add(self, uid: str, netns: Hashable) -> tuple[Step, ...]:
        if not self._snapshot_done:
            self._named.add(uid)
        current = self._active.get(uid)
        if current == netns:
            return ()
        self._pending.discard(uid)
        if current is None:
            return (StartProxy(uid=uid),)
        del self._active[uid]
        return (StopProxy(uid=uid), StartProxy(uid=uid))

    def started(self, uid: str, netns: Hashable) -> None:
        self._active[uid] = netns
        self._pending.discard(uid)

    def failed(self, uid: str) -> None:
        self._pending.add(uid)

    def keep(self, uid: str) -> None:
        if self._snapshot_done:
            raise RemoteProtocolError(f"ZDS keep for {uid} after the snapshot was complete")
        self._named.add(uid)

    def delete(self, uid: str) -> tuple[Step, ...]:
        if not self._snapshot_done:
            raise RemoteProtocolError(f"ZDS del for {uid} before the snapshot was complete")
        self._pending.discard(uid)
        if self._active.pop(uid, None) is None:
            return ()
        return (StopProxy(uid=uid),)

    def snapshot_sent(self) -> tuple[Step, ...]:
        if self._snapshot_done:
            raise RemoteProtocolError("ZDS snapshot_sent received twice on one connection")
        stale = sorted(uid for uid in self._active if uid not in self._named)
        for uid in stale:
            del self._active[uid]
        self._pending &= self._named
        self._named.clear()
        self._snapshot_done = True
        self._ever_synced = True
        return tuple(StopProxy(uid=uid) for uid in stale)
