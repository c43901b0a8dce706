"""The one backoff: schedule, cap, jitter bounds, the step form, and the retry counter."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambientmesh.backoff import Backoff, Retry
from ambientmesh.errors import InvalidInput


def test_delays_double_from_initial_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    rng = random.Random(0)
    assert [backoff.delay(n, rng) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_attempts_below_one_count_as_the_first() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0)
    assert backoff.base(0) == backoff.base(-3) == 0.5


def test_other_multipliers_grow_by_their_own_factor() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, multiplier=3.0)
    assert [backoff.base(n) for n in range(1, 7)] == [1, 3, 9, 27, 81, 100]


def test_a_slow_multiplier_still_reaches_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=1000.0, multiplier=1.01)
    assert backoff.base(500) < 1000.0
    assert backoff.base(800) == 1000.0


def test_a_long_outage_with_a_huge_multiplier_stays_finite() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, multiplier=1e6)
    assert backoff.base(10**9) == 60.0


def test_zero_initial_retries_at_once_every_time() -> None:
    backoff = Backoff(initial=0.0, maximum=300.0)
    assert [backoff.delay(n, random.Random(1)) for n in (1, 5, 100)] == [0, 0, 0]
    assert backoff.after(backoff.after(None)) == 0


@given(
    initial=st.floats(0.001, 100.0),
    extra=st.floats(0.0, 1000.0),
    multiplier=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 0.99),
    attempt=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
)
def test_jitter_stays_within_its_fraction_and_under_the_cap(
    *, initial: float, extra: float, multiplier: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(
        initial=initial, maximum=initial + extra, multiplier=multiplier, jitter=jitter
    )
    base = backoff.base(attempt)
    delay = backoff.delay(attempt, random.Random(seed))
    assert initial <= base <= backoff.maximum
    assert base * (1 - jitter) * (1 - 1e-12) <= delay <= backoff.maximum
    assert delay <= base * (1 + jitter) * (1 + 1e-12)


def test_jitter_comes_from_the_injected_random_source() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.2)
    assert backoff.delay(3, random.Random(42)) == backoff.delay(3, random.Random(42))
    assert backoff.delay(3, random.Random(42)) != backoff.delay(3, random.Random(43))


def test_after_steps_from_the_previous_wait() -> None:
    backoff = Backoff(initial=10.0, maximum=300.0)
    assert backoff.after(None) == 10
    assert backoff.after(10) == 20
    assert backoff.after(200) == 300
    assert backoff.after(1) == 10  # never below the first delay


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1, "maximum": 1},
        {"initial": 10, "maximum": 1},
        {"initial": 1, "maximum": math.inf},
        {"initial": math.nan, "maximum": 1},
        {"initial": 1, "maximum": 2, "multiplier": 0.5},
        {"initial": 1, "maximum": 2, "jitter": 1},
        {"initial": 1, "maximum": 2, "jitter": -0.1},
    ],
)
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInput, match="backoff needs"):
        Backoff(**kwargs)


def test_retry_delays_double_up_to_the_maximum_within_jitter() -> None:
    retry = Retry(Backoff(initial=1.0, maximum=8.0, jitter=0.25), random.Random(7))
    delays = [retry.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.75 <= delay <= base * 1.25
    assert retry.failures == 6


def test_retry_reset_starts_over() -> None:
    retry = Retry(Backoff(initial=1.0, maximum=60.0, jitter=0.0), random.Random(1))
    assert [retry.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    retry.reset()
    assert retry.failures == 0
    assert retry.next_delay() == 1.0
