"""The store for asyncio code: group commit, reads off the event loop, and watches.

Writes queue up while the previous transaction commits and then commit together (one
fsync for the group); each caller is answered only after its transaction committed, and a
write that fails its own checks fails alone. Committed changes are published to watchers in
commit order. SQLite calls run in worker threads so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ambientmesh.errors import Unavailable
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.filters import ListFilter
from ambientmesh.store.hub import Subscription, WatchHub
from ambientmesh.store.store import Operation, Outcome, Snapshot, Store
from ambientmesh.store.types import ApplyResult, EventType, ObjectKey

T = TypeVar("T")

# How many changes one history read returns; a watcher far behind reads in pages.
_HISTORY_PAGE = 1000


@dataclass(slots=True)
class _Pending:
    op: Operation[Any]
    future: asyncio.Future[Any]


class AsyncStore:
    """An asyncio front for a ``Store``. Start ``run()`` in a TaskGroup; ``close()`` ends it."""

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 256,
        max_pending: int = 8192,
        watch_queue: int = 10_000,
    ) -> None:
        self.store = store
        self.watch_queue = watch_queue
        self.hub = WatchHub(store.resource_version)
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(max_pending)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="store-reader")
        self._closing = False
        self.batches = 0
        self.writes = 0

    # ------------------------------------------------------------ writes
    async def write(self, op: Operation[T]) -> T:
        """Run one operation in the next group commit; returns once it is durable."""
        if self._closing:
            raise Unavailable("the resource store is shutting down")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(op, future))
        return await future

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.write(lambda txn: txn.create(obj))

    async def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.write(lambda txn: txn.update(obj))

    async def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.write(lambda txn: txn.update_status(obj))

    async def delete(self, kind: KindInfo, name: str, namespace: str | None) -> dict[str, Any]:
        return await self.write(lambda txn: txn.delete(kind, name, namespace))

    async def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> list[ApplyResult]:
        return await self.write(lambda txn: txn.apply(objs, dry_run=dry_run))

    async def run(self) -> None:
        """Commit queued writes in groups until ``close()``; then finish what was queued."""
        try:
            await self._commit_until_closed()
        finally:
            self._closing = True
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None and not item.future.done():
                    item.future.set_exception(Unavailable("the resource store is shutting down"))

    async def _commit_until_closed(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    self._queue.put_nowait(None)  # stop after this batch
                    break
                batch.append(item)
            outcomes = await loop.run_in_executor(
                self._writer, self.store.write, [item.op for item in batch]
            )
            self._settle(batch, outcomes)

    def _settle(self, batch: list[_Pending], outcomes: list[Outcome[Any]]) -> None:
        self.batches += 1
        self.writes += len(batch)
        events = [event for outcome in outcomes for event in outcome.events]
        if events:
            self.hub.publish(events, self.store.resource_version)
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.future.done():
                continue  # the caller gave up waiting; the write stands regardless
            if outcome.error is not None:
                item.future.set_exception(outcome.error)
            else:
                item.future.set_result(outcome.value)

    # ------------------------------------------------------------ reads
    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    async def get_raw(self, key: ObjectKey) -> str | None:
        return await self.read(self.store.get_raw, key)

    async def snapshot(self, flt: ListFilter) -> Snapshot:
        return await self.read(self.store.snapshot, flt)

    def watch(self, flt: ListFilter, since: int | None) -> Watch:
        """Changes ``flt`` selects after resourceVersion ``since``; with ``since=None``,
        synthetic ADDED events for the current objects come first ("list then watch")."""
        return Watch(self, flt, since)

    # ------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        """Stop taking writes, let queued ones commit, end watches and close the store."""
        if self._closing:
            return
        self._closing = True
        await self._queue.put(None)

    def shutdown(self) -> None:
        """Release threads and the store file; call after ``run()`` returned."""
        self.hub.close()
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.store.close()


class Watch:
    """One watcher's position in the stream of changes.

    ``progress`` is the resourceVersion up to which every change has been delivered or
    filtered out; a BOOKMARK carries it, and a client may resume from it. Changes come from
    the events table while the watcher is behind and from the hub once it has caught up; the
    subscription is taken before the first read, so no change falls between the two.
    """

    def __init__(self, store: AsyncStore, flt: ListFilter, since: int | None) -> None:
        self._store = store
        self._flt = flt
        self._since = since
        self.progress = since if since is not None else 0
        self._sub: Subscription | None = None
        self._catching_up = True
        self._ticked = False
        self._stopped = False

    async def __aenter__(self) -> Watch:
        self._sub = self._store.hub.subscribe(
            self._flt.group, self._flt.kind, capacity=self._store.watch_queue
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            self._sub.unsubscribe()

    def tick(self) -> None:
        """Make a waiting ``next()`` return an empty list (time for a BOOKMARK)."""
        self._ticked = True
        if self._sub is not None:
            self._sub.poke()

    def stop(self) -> None:
        """Make ``next()`` return None (the watch's time is up)."""
        self._stopped = True
        if self._sub is not None:
            self._sub.poke()

    async def initial(self) -> list[tuple[EventType, str]]:
        """The synthetic ADDED events of a watch without a resourceVersion (else nothing)."""
        if self._since is not None:
            return []
        snap = await self._store.snapshot(self._flt)
        self.progress = snap.resource_version
        self._catching_up = False
        return [("ADDED", doc) for doc in snap.docs]

    async def next(self) -> list[tuple[EventType, str]] | None:
        """The next visible changes as (type, object JSON); [] on a tick; None when over.
        Raises ``Gone`` if the watcher fell behind the retained history."""
        sub = self._sub
        assert sub is not None, "use the Watch as an async context manager"
        while True:
            if self._stopped or sub.closed:
                return None
            if sub.overflowed:
                sub.reset()
                self._catching_up = True
            if self._catching_up:
                found = await self._catch_up()
            else:
                found = self._take_live(sub)
            if found:
                return found
            if self._ticked:
                self._ticked = False
                return []
            if not self._catching_up:
                await sub.wait()

    async def _catch_up(self) -> list[tuple[EventType, str]]:
        flt = self._flt
        events, current = await self._store.read(
            lambda: self._store.store.events_after(
                self.progress, group=flt.group, kind=flt.kind, limit=_HISTORY_PAGE
            )
        )
        if len(events) < _HISTORY_PAGE:
            self._catching_up = False
            self.progress = max(self.progress, current)
        elif events:
            self.progress = events[-1].rv
        return [(seen, e.doc) for e in events if (seen := e.seen_as(flt)) is not None]

    def _take_live(self, sub: Subscription) -> list[tuple[EventType, str]]:
        found: list[tuple[EventType, str]] = []
        for event in sub.take():
            if event.rv <= self.progress:
                continue  # already delivered by the history read
            self.progress = event.rv
            seen = event.seen_as(self._flt)
            if seen is not None:
                found.append((seen, event.doc))
        self.progress = max(self.progress, self._store.hub.published_rv)
        return found


async def run_store(store: AsyncStore) -> None:
    """Run the committer until closed, then release the store (for use in a TaskGroup)."""
    try:
        await store.run()
    finally:
        with contextlib.suppress(Exception):
            store.shutdown()
