"""A keyed work queue for controllers: deduplicated, one reconcile per key at a time, retries.

Informer handlers `add` keys (cheap, synchronous); `run` calls the reconcile function for each.
A key added while it is queued is reconciled once; a key added while it is being reconciled
is reconciled again afterwards, so no change is ever missed. A reconcile that raises is retried
after a back-off that doubles per consecutive failure of that key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.name = name
        self._clock = clock
        self._backoff = Backoff(initial=base_delay, maximum=max_delay)
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._busy: set[K] = set()
        self._again: set[K] = set()
        self._failures: dict[K, int] = {}
        self._later: list[tuple[K, float]] = []
        self._tasks: asyncio.TaskGroup | None = None

    def add(self, key: K) -> None:
        if key in self._busy:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds of the clock have passed."""
        if delay <= 0:
            self.add(key)
        elif self._tasks is None:
            self._later.append((key, delay))
        else:
            self._tasks.create_task(self._add_later(key, delay))

    async def run(self, reconcile: Callable[[K], Awaitable[None]]) -> None:
        """Reconcile keys one at a time until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            for key, delay in self._later:
                tasks.create_task(self._add_later(key, delay))
            self._later.clear()
            while True:
                key = await self._queue.get()
                self._queued.discard(key)
                self._busy.add(key)
                try:
                    await self._reconcile_one(reconcile, key)
                finally:
                    self._busy.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)

    async def _reconcile_one(self, reconcile: Callable[[K], Awaitable[None]], key: K) -> None:
        try:
            await reconcile(key)
        except MeshError as error:
            delay = self._retry_delay(key)
            log.warning("%s %s: %s; retrying in %.1f s", self.name, key, error.message, delay)
            self.add_after(key, delay)
        except Exception:
            # A bug must cost one object a retry, never the whole controller.
            delay = self._retry_delay(key)
            log.exception("%s %s: reconcile failed; retrying in %.1f s", self.name, key, delay)
            self.add_after(key, delay)
        else:
            self._failures.pop(key, None)

    def _retry_delay(self, key: K) -> float:
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        return self._backoff.base(count)

    async def _add_later(self, key: K, delay: float) -> None:
        await self._clock.sleep(delay)
        self.add(key)
