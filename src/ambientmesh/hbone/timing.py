"""Waiting on the injected clock: a future or a deadline, whichever comes first."""

from __future__ import annotations

import asyncio
from typing import Any

from ambientmesh.clock import Clock


async def wait_until(future: asyncio.Future[Any], clock: Clock, seconds: float) -> bool:
    """Wait for ``future`` at most ``seconds`` of ``clock`` time; True if it finished."""
    if future.done():
        return True
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not woken.done():
            woken.set_result(None)

    async with asyncio.TaskGroup() as group:
        timer = group.create_task(clock.sleep(seconds))
        timer.add_done_callback(wake)
        future.add_done_callback(wake)
        try:
            await woken
        finally:
            future.remove_done_callback(wake)
            timer.cancel()
    return future.done()
