"""Reconnect backoff: doubles to a ceiling, jitters within bounds, resets."""

from __future__ import annotations

import random

from ambientmesh.xds.backoff import Backoff


def test_delays_double_up_to_the_maximum_within_jitter() -> None:
    backoff = Backoff(random.Random(7), initial=1.0, maximum=8.0, jitter=0.25)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.75 <= delay <= base * 1.25


def test_reset_starts_over() -> None:
    backoff = Backoff(random.Random(1), initial=1.0, maximum=60.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_jitter_spreads_a_fleet() -> None:
    delays = {Backoff(random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) == 20
