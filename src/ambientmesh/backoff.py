"""Exponential backoff: the pure schedule of delays, and a counter of one loop's failures."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays that grow from ``initial`` by ``multiplier`` per attempt, up to ``maximum``.

    ``jitter`` spreads each delay uniformly over ±that fraction of itself, never past
    ``maximum``, so that a fleet that failed together does not retry in lockstep. A zero
    ``initial`` means "retry at once", every time.
    """

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.initial <= self.maximum and math.isfinite(self.maximum)):
            raise InvalidInput(
                f"backoff needs 0 <= initial ({self.initial}) <= maximum ({self.maximum}) < inf"
            )
        if not (self.multiplier >= 1 and 0 <= self.jitter < 1):
            raise InvalidInput(
                f"backoff needs multiplier >= 1 (not {self.multiplier}) "
                f"and 0 <= jitter < 1 (not {self.jitter})"
            )

    def base(self, attempt: int) -> float:
        """The delay before the ``attempt``-th retry (1 for the first), before jitter."""
        steps = max(attempt, 1) - 1
        if steps == 0 or self.initial == 0 or self.multiplier == 1:
            return self.initial
        # Once a step reaches the cap, more steps change nothing; stopping there keeps the
        # power finite however long an outage lasts.
        to_cap = math.ceil(math.log(self.maximum / self.initial, self.multiplier)) + 1
        return min(self.maximum, self.initial * self.multiplier ** min(steps, to_cap))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The jittered delay before the ``attempt``-th retry (1 for the first)."""
        spread = 1 + rng.uniform(-self.jitter, self.jitter)
        return min(self.maximum, self.base(attempt) * spread)

    def after(self, previous: float | None) -> float:
        """The delay (without jitter) that follows a wait of ``previous``; None: the first."""
        if previous is None:
            return self.initial
        return min(max(previous * self.multiplier, self.initial), self.maximum)


class Retry:
    """The consecutive failures of one retry loop and the wait after each; ``reset`` on success.

    Not thread-safe: one loop owns it.
    """

    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self.backoff = backoff
        self._rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure and say how long to wait before the next try."""
        self.failures += 1
        return self.backoff.delay(self.failures, self._rng)

    def reset(self) -> None:
        self.failures = 0
