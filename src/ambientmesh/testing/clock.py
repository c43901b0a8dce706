"""A fake clock whose time moves only when a test (or autojump) moves it."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A Clock for tests. ``advance`` moves time and wakes sleepers whose deadline passed.

    With ``autojump=True`` a sleeper that would otherwise wait forever makes time jump
    straight to the earliest deadline once the event loop has nothing else to run, the
    way trio's MockClock does; tests of timeouts then run instantly.
    """

    def __init__(self, *, start: datetime | None = None, autojump: bool = False) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._jump_pending = False
        self.autojump = autojump

    def monotonic(self) -> float:
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        deadline = self._elapsed + max(0.0, seconds)
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        if self.autojump and not self._jump_pending:
            self._jump_pending = True
            loop.call_soon(self._jump_when_idle, 0)
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline is now past."""
        self._elapsed += seconds
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _jump_when_idle(self, rounds: int) -> None:
        # One chain of jumps at a time: let ready callbacks run a few rounds before deciding
        # the loop is idle, jump to the earliest deadline, then re-arm while sleepers remain,
        # so a woken task runs before time moves again.
        loop = asyncio.get_running_loop()
        if rounds < 5:
            loop.call_soon(self._jump_when_idle, rounds + 1)
            return
        live = [entry for entry in self._sleepers if not entry[2].done()]
        if live:
            self.advance(max(0.0, min(entry[0] for entry in live) - self._elapsed))
        if any(not entry[2].done() for entry in self._sleepers):
            loop.call_soon(self._jump_when_idle, 0)
        else:
            self._jump_pending = False
