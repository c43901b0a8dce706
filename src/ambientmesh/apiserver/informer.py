"""An informer: list + watch one kind into a local cache and tell handlers what changed.

It lists, then watches from the list's resourceVersion. When the connection drops it resumes
from the last resourceVersion it saw (BOOKMARKs keep that fresh even for a quiet kind); when
the server answers ``Gone`` it lists again and reports the difference as changes, so handlers
see every object's latest state exactly as if nothing had been missed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.backoff import Backoff, Retry
from ambientmesh.clock import Clock
from ambientmesh.errors import Gone, RemoteProtocolError, Unavailable
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import WatchEvent

log = logging.getLogger(__name__)

ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]
CacheKey = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One object's change as the cache saw it; ``old`` is the cached state before it."""

    type: ChangeType
    object: dict[str, Any]
    old: dict[str, Any] | None


Handler = Callable[[Change], None]


def _key(obj: dict[str, Any]) -> CacheKey:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """Keeps ``cache`` equal to the server's objects of one kind (optionally filtered).

    Run ``run()`` in a TaskGroup; ``wait_synced()`` returns after the first list. Handlers
    are called in order for every change, on the event loop; they should be quick (enqueue
    work, don't do it) and an exception in one is logged, not propagated.
    """

    def __init__(
        self,
        client: AsyncApiClient,
        kind: KindInfo,
        *,
        clock: Clock,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        rng: random.Random | None = None,
        min_backoff: float = 0.1,
        max_backoff: float = 10.0,
        watch_timeout: int | None = 600,
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.cache: dict[CacheKey, dict[str, Any]] = {}
        self.resource_version = ""
        self.relists = 0
        self.reconnects = 0
        self._clock = clock
        self._rng = rng or random.Random()
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._watch_timeout = watch_timeout
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        space = (namespace or "default") if self.kind.namespaced else ""
        return self.cache.get((space, name))

    def items(self) -> list[dict[str, Any]]:
        return list(self.cache.values())

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self) -> None:
        """List and watch until cancelled. Only errors no retry can fix propagate."""
        must_list = True
        retry = Retry(
            Backoff(initial=self._min_backoff, maximum=self._max_backoff, jitter=0.5), self._rng
        )
        while True:
            try:
                if must_list:
                    await self._relist()
                    must_list = False
                await self._watch()
                retry.reset()
            except Gone as error:
                log.info("%s watch expired (%s); relisting", self.kind.plural, error.message)
                must_list = True
            except (Unavailable, RemoteProtocolError) as error:
                log.warning("%s watch interrupted: %s", self.kind.plural, error.message)
                await self._clock.sleep(retry.next_delay())
            self.reconnects += 1

    async def _relist(self) -> None:
        listed = await self.client.list(
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {_key(obj): obj for obj in listed.items}
        gone = [key for key in self.cache if key not in fresh]
        for key in gone:
            last = self.cache.pop(key)
            self._emit(Change(type="DELETED", object=last, old=last))
        for key, obj in fresh.items():
            old = self.cache.get(key)
            self.cache[key] = obj
            if old is None:
                self._emit(Change(type="ADDED", object=obj, old=None))
            elif _rv(old) != _rv(obj):
                self._emit(Change(type="MODIFIED", object=obj, old=old))
        self.resource_version = listed.resource_version
        self.relists += 1
        self._synced.set()

    async def _watch(self) -> None:
        async with self.client.watch(
            self.kind,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self._watch_timeout,
            bookmarks=True,
        ) as events:
            async for event in events:
                self._observe(event)

    def _observe(self, event: WatchEvent) -> None:
        obj = event.object
        if event.type == "BOOKMARK":
            self.resource_version = _rv(obj) or self.resource_version
            return
        key = _key(obj)
        old = self.cache.get(key)
        if event.type == "DELETED":
            self.cache.pop(key, None)
            change = Change(type="DELETED", object=obj, old=old)
        elif old is not None and _rv(old) == _rv(obj):
            change = None  # replayed after a reconnect: nothing new
        else:
            self.cache[key] = obj
            change = Change(type="MODIFIED" if old else "ADDED", object=obj, old=old)
        self.resource_version = _rv(obj) or self.resource_version
        if change is not None:
            self._emit(change)

    def _emit(self, change: Change) -> None:
        for handler in self._handlers:
            try:
                handler(change)
            except Exception:
                log.exception("an informer handler for %s failed", self.kind.plural)
