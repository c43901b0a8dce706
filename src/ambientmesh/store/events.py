"""Committed changes as the store records them, and how a filtered watcher sees each one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambientmesh.store.filters import ListFilter
from ambientmesh.store.types import EventType, WatchEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One change: the object after it (as JSON text), with the labels and selectable fields
    before and after, so a watcher with selectors can tell an object entering or leaving its
    view (Kubernetes' watch cache sends ADDED/DELETED for those, and so do we)."""

    rv: int
    type: EventType
    group: str
    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    prev_labels: Mapping[str, str] | None
    prev_fields: Mapping[str, str] | None
    doc: str

    def seen_as(self, flt: ListFilter) -> EventType | None:
        """The event type a watcher with ``flt`` receives, or None if it sees nothing."""
        if (self.group, self.kind) != (flt.group, flt.kind):
            return None
        now = flt.matches(self.namespace, self.name, self.labels, self.fields)
        if self.type != "MODIFIED" or self.prev_labels is None or self.prev_fields is None:
            return self.type if now else None
        before = flt.matches(self.namespace, self.name, self.prev_labels, self.prev_fields)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None

    def to_watch_event(self, event_type: EventType | None = None) -> WatchEvent:
        obj: dict[str, Any] = json.loads(self.doc)
        return WatchEvent(type=event_type or self.type, object=obj)
