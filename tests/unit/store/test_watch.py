"""Watches over the async store: history, then live changes, with no gap and no repeat."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ambientmesh.errors import Gone
from ambientmesh.resources import kinds
from ambientmesh.store.aio import AsyncStore, Watch
from ambientmesh.store.filters import make_filter
from ambientmesh.store.store import Store, StoreConfig
from ambientmesh.testing.clock import FakeClock
from tests.unit.store.builders import account, pod

POD = kinds.lookup("v1", "Pod")
Seen = list[tuple[str, str, int]]


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., AsyncStore]]:
    """Start AsyncStores on demand; each is closed and released at the end of the test."""
    started: list[tuple[AsyncStore, asyncio.Task[None]]] = []
    async with asyncio.TaskGroup() as tasks:

        def start(store: Store, **options: Any) -> AsyncStore:
            async_store = AsyncStore(store, **options)
            started.append((async_store, tasks.create_task(async_store.run())))
            return async_store

        yield start
        for async_store, committer in started:
            await async_store.close()
            await committer
    for async_store, _ in started:
        async_store.shutdown()


def summary(items: list[tuple[str, str]]) -> Seen:
    out = []
    for event_type, doc in items:
        obj = json.loads(doc)
        out.append((event_type, obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"])))
    return out


async def collect(watch: Watch, count: int) -> Seen:
    seen: Seen = []
    while len(seen) < count:
        items = await watch.next()
        assert items is not None
        seen.extend(summary(items))
    return seen


async def test_watch_from_a_version_sees_later_changes_in_order(
    store: Store, running: Callable[..., AsyncStore]
) -> None:
    async_store = running(store)
    await async_store.create(pod("before"))
    since = store.resource_version
    async with async_store.watch(make_filter(POD), since) as watch:
        assert await watch.initial() == []
        created = await async_store.create(pod("web"))
        await async_store.update(
            {**created, "metadata": {**created["metadata"], "labels": {"a": "b"}}}
        )
        await async_store.create(account("not-a-pod"))
        await async_store.delete(POD, "web", "default")
        seen = await collect(watch, 3)
    assert seen == [
        ("ADDED", "web", since + 1),
        ("MODIFIED", "web", since + 2),
        ("DELETED", "web", since + 4),
    ]


async def test_watch_without_a_version_lists_then_follows(
    store: Store, running: Callable[..., AsyncStore]
) -> None:
    async_store = running(store)
    await async_store.create(pod("a", app="x"))
    await async_store.create(pod("b", app="y"))
    async with async_store.watch(make_filter(POD, label_selector="app=x"), None) as watch:
        initial = summary(await watch.initial())
        assert [(t, n) for t, n, _ in initial] == [("ADDED", "a")]
        assert watch.progress == store.resource_version
        moved = store.get(POD, "b")
        await async_store.update(
            {**moved, "metadata": {**moved["metadata"], "labels": {"app": "x"}}}
        )
        assert [(t, n) for t, n, _ in await collect(watch, 1)] == [("ADDED", "b")]


async def test_history_and_live_changes_join_without_gap_or_repeat(
    store: Store, running: Callable[..., AsyncStore]
) -> None:
    async_store = running(store, watch_queue=5)  # tiny queue: the watcher overflows often
    since = store.resource_version
    async with async_store.watch(make_filter(POD), since) as watch:
        writes = [async_store.create(pod(f"p{i}")) for i in range(200)]
        reader = collect(watch, 200)
        results = await asyncio.gather(reader, *writes)
    seen: Seen = results[0]
    assert [rv for _, _, rv in seen] == list(range(since + 1, since + 201))
    assert {name for _, name, _ in seen} == {f"p{i}" for i in range(200)}


async def test_watcher_behind_compacted_history_gets_gone(
    tmp_path: Path, running: Callable[..., AsyncStore]
) -> None:
    store = Store(tmp_path / "s.db", clock=FakeClock(), config=StoreConfig(event_retention=5))
    async_store = running(store, watch_queue=2)
    since = store.resource_version
    async with async_store.watch(make_filter(POD), since) as watch:
        for index in range(20):
            await async_store.create(pod(f"p{index}"))
        with pytest.raises(Gone):
            await collect(watch, 20)


async def test_tick_returns_empty_and_stop_ends(
    store: Store, running: Callable[..., AsyncStore]
) -> None:
    async_store = running(store)
    async with async_store.watch(make_filter(POD), store.resource_version) as watch:
        watch.tick()
        assert await watch.next() == []
        watch.stop()
        assert await watch.next() is None


async def test_closing_the_hub_ends_watches(
    store: Store, running: Callable[..., AsyncStore]
) -> None:
    async_store = running(store)
    async with async_store.watch(make_filter(POD), store.resource_version) as watch:
        async_store.hub.close()
        assert await watch.next() is None
