"""Waiting for an event on the injected clock, with a bound."""

from __future__ import annotations

import asyncio

from ambientmesh.clock import Clock
from ambientmesh.hbone.timing import wait_until


async def wait_event(event: asyncio.Event, clock: Clock, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` of ``clock`` time passed; True if it is set."""
    if event.is_set():
        return True
    async with asyncio.TaskGroup() as group:
        waiter = group.create_task(event.wait())
        await wait_until(waiter, clock, seconds)
        waiter.cancel()
    return event.is_set()
