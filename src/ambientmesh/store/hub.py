"""In-memory fan-out of committed changes to live watchers, with bounded per-watcher queues."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ambientmesh.store.events import StoredEvent


class Subscription:
    """One watcher's queue of committed changes of one kind.

    The queue is bounded: a watcher that falls more than ``capacity`` changes behind is marked
    ``overflowed`` and its queue dropped; it then catches up from the events table, which
    holds the same changes, instead of holding memory for a slow reader.
    """

    def __init__(self, hub: WatchHub, group: str, kind: str, capacity: int) -> None:
        self.hub = hub
        self.group = group
        self.kind = kind
        self.capacity = capacity
        self.overflowed = False
        self.closed = False
        self._items: list[StoredEvent] = []
        self._wakeup = asyncio.Event()

    def offer(self, events: Sequence[StoredEvent]) -> None:
        if self.overflowed:
            return
        if len(self._items) + len(events) > self.capacity:
            self.overflowed = True
            self._items = []
        else:
            self._items.extend(events)
        self._wakeup.set()

    def take(self) -> list[StoredEvent]:
        items, self._items = self._items, []
        self._wakeup.clear()
        return items

    def reset(self) -> None:
        """Forget an overflow; the caller re-reads history from where it had got to."""
        self.overflowed = False
        self._items = []

    def poke(self) -> None:
        """Wake the waiter without news (a timer tick or a stop request)."""
        self._wakeup.set()

    async def wait(self) -> None:
        await self._wakeup.wait()
        self._wakeup.clear()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    def unsubscribe(self) -> None:
        self.hub.remove(self)


class WatchHub:
    """Routes each committed change to the subscriptions for its kind, in commit order."""

    def __init__(self, resource_version: int) -> None:
        self.published_rv = resource_version
        self._subs: dict[tuple[str, str], set[Subscription]] = {}
        self._closed = False

    def subscribe(self, group: str, kind: str, *, capacity: int = 10_000) -> Subscription:
        sub = Subscription(self, group, kind, capacity)
        if self._closed:
            sub.close()
        self._subs.setdefault((group, kind), set()).add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        subs = self._subs.get((sub.group, sub.kind))
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[(sub.group, sub.kind)]

    def publish(self, events: Sequence[StoredEvent], resource_version: int) -> None:
        """Hand out one commit's changes; ``resource_version`` is the store's after it."""
        by_kind: dict[tuple[str, str], list[StoredEvent]] = {}
        for event in events:
            by_kind.setdefault((event.group, event.kind), []).append(event)
        self.published_rv = max(self.published_rv, resource_version)
        for kind, batch in by_kind.items():
            for sub in self._subs.get(kind, ()):
                sub.offer(batch)

    def close(self) -> None:
        self._closed = True
        for subs in self._subs.values():
            for sub in subs:
                sub.close()

    @property
    def watchers(self) -> int:
        return sum(len(subs) for subs in self._subs.values())
