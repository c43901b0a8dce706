"""Exponential backoff with jitter for reconnecting to the control plane."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each spread by ``±jitter``.

    Jitter keeps a fleet of proxies that lost the control plane together from reconnecting
    in lockstep. ``reset`` after a stream made progress.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        initial: float = 0.5,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        jitter: float = 0.2,
    ) -> None:
        self._rng = rng
        self._initial = initial
        self._maximum = maximum
        self._multiplier = multiplier
        self._jitter = jitter
        self._next = initial

    def next_delay(self) -> float:
        base = self._next
        self._next = min(self._maximum, self._next * self._multiplier)
        return base * (1.0 + self._rng.uniform(-self._jitter, self._jitter))

    def reset(self) -> None:
        self._next = self._initial
