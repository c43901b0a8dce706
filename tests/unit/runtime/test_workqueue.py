"""The controllers' work queue: deduplication, re-queue while busy, retry with back-off."""

from __future__ import annotations

import asyncio

from ambientmesh.errors import Unavailable
from ambientmesh.runtime.workqueue import WorkQueue
from ambientmesh.testing.clock import FakeClock


async def test_keys_queued_twice_run_once_and_changes_during_a_run_run_again() -> None:
    queue: WorkQueue[str] = WorkQueue("test", clock=FakeClock())
    seen: list[str] = []
    third = asyncio.Event()

    async def reconcile(key: str) -> None:
        seen.append(key)
        if len(seen) == 1:
            queue.add("a")  # "a" changes while it is being reconciled
            queue.add("b")  # already queued: not twice
        if len(seen) == 3:
            third.set()

    queue.add("a")
    queue.add("a")
    queue.add("b")
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(queue.run(reconcile))
        await third.wait()
        for _ in range(5):  # give a wrong fourth reconcile the chance to show up
            await asyncio.sleep(0)
        runner.cancel()
    assert seen == ["a", "b", "a"]


async def test_failures_retry_with_doubling_delays_and_success_resets() -> None:
    clock = FakeClock(autojump=True)
    queue: WorkQueue[str] = WorkQueue("test", clock=clock, base_delay=1.0, max_delay=3.0)
    attempts: list[float] = []
    succeeded = asyncio.Event()

    async def reconcile(key: str) -> None:
        attempts.append(clock.monotonic())
        if len(attempts) < 4:
            raise Unavailable("not yet")
        succeeded.set()

    queue.add("k")
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(queue.run(reconcile))
        await succeeded.wait()
        runner.cancel()
    assert attempts == [0.0, 1.0, 3.0, 6.0]  # waits of 1, 2, then 3 (the cap)


async def test_add_after_waits_for_the_clock() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("test", clock=clock)
    seen: list[str] = []
    reconciled = asyncio.Event()

    async def reconcile(key: str) -> None:
        seen.append(key)
        reconciled.set()

    queue.add_after("later", 5.0)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(queue.run(reconcile))
        for _ in range(10):
            await asyncio.sleep(0)
        assert seen == []
        clock.advance(5.0)
        await reconciled.wait()
        runner.cancel()
    assert seen == ["later"]
