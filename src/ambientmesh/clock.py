"""Time as an injected dependency, so code that waits or expires can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What time-dependent code may ask of the world."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for deadlines and durations."""
        ...

    def now(self) -> datetime:
        """Wall-clock time in UTC; for timestamps and certificate validity."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
