"""Group commit: many writes share one transaction, and each one fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ambientmesh.errors import AlreadyExists, Conflict, NotFound
from ambientmesh.resources import kinds
from ambientmesh.store.aio import AsyncStore
from ambientmesh.store.store import Store
from ambientmesh.store.transaction import Transaction
from tests.unit.store.builders import pod

POD = kinds.lookup("v1", "Pod")


def test_a_failing_write_does_not_affect_its_neighbours(store: Store) -> None:
    store.create(pod("exists"))
    rv = store.resource_version

    def broken(txn: Transaction) -> Any:
        txn.create(pod("half-done"))
        raise RuntimeError("bug after a write")

    outcomes = store.write(
        [
            lambda txn: txn.create(pod("a")),
            lambda txn: txn.create(pod("exists")),
            broken,
            lambda txn: txn.create(pod("b")),
        ]
    )
    assert [type(o.error).__name__ if o.error else "ok" for o in outcomes] == [
        "ok",
        "AlreadyExists",
        "MeshError",
        "ok",
    ]
    # The failures left no trace: no object, no event, no gap in resourceVersions.
    assert [o.events[0].rv for o in outcomes if o.error is None] == [rv + 1, rv + 2]
    assert store.resource_version == rv + 2
    with pytest.raises(NotFound):
        store.get(POD, "half-done")


def test_two_updates_from_the_same_version_in_one_group_conflict(store: Store) -> None:
    created = store.create(pod("web"))
    first = {**created, "metadata": {**created["metadata"], "labels": {"by": "first"}}}
    second = {**created, "metadata": {**created["metadata"], "labels": {"by": "second"}}}
    outcomes = store.write([lambda txn: txn.update(first), lambda txn: txn.update(second)])
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, Conflict)
    assert store.get(POD, "web")["metadata"]["labels"] == {"by": "first"}


async def test_async_writes_are_grouped_and_answered_individually(store: Store) -> None:
    async_store = AsyncStore(store)
    async with asyncio.TaskGroup() as tasks:
        committer = tasks.create_task(async_store.run())
        results = await asyncio.gather(
            *(async_store.create(pod(f"p{i}")) for i in range(50)),
            async_store.create(pod("p0")),
            return_exceptions=True,
        )
        await async_store.close()
        await committer
    async_store.shutdown()
    created = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 50
    assert len(failed) == 1
    assert isinstance(failed[0], AlreadyExists)
    # Fewer transactions than writes: later writes queued while the first group committed.
    assert async_store.writes == 51
    assert async_store.batches < 51


async def test_writes_after_close_are_refused(store: Store) -> None:
    from ambientmesh.errors import Unavailable

    async_store = AsyncStore(store)
    async with asyncio.TaskGroup() as tasks:
        committer = tasks.create_task(async_store.run())
        await async_store.close()
        await committer
    async_store.shutdown()
    with pytest.raises(Unavailable, match="shutting down"):
        await async_store.create(pod("late"))
