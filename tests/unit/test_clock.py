from __future__ import annotations

import asyncio

from ambientmesh.testing.clock import FakeClock


async def test_advance_wakes_sleepers_in_deadline_order() -> None:
    clock = FakeClock()
    woken: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append(name)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(sleeper("late", 10))
        tasks.create_task(sleeper("early", 1))
        await asyncio.sleep(0)
        clock.advance(5)
        await asyncio.sleep(0)
        assert woken == ["early"]
        clock.advance(5)
    assert woken == ["early", "late"]
    assert clock.monotonic() == 10


async def test_autojump_makes_long_timeouts_instant() -> None:
    clock = FakeClock(autojump=True)
    await clock.sleep(3600)
    assert clock.monotonic() == 3600


async def test_autojump_wakes_concurrent_sleepers_at_their_own_deadlines() -> None:
    clock = FakeClock(autojump=True)
    woken: list[float] = []

    async def worker() -> None:
        await clock.sleep(0)
        woken.append(clock.monotonic())
        await clock.sleep(10)
        woken.append(clock.monotonic())

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(worker())
        await clock.sleep(100)
    assert woken == [0, 10]
    assert clock.monotonic() == 100
