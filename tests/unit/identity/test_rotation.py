from __future__ import annotations

import random
from datetime import timedelta

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.identity.rotation import (
    MIN_REFRESH_SECONDS,
    CertificateBackoff,
    Validity,
    seconds_until_fetch,
)
from ambientmesh.testing.clock import FakeClock


def day_long(clock: FakeClock) -> Validity:
    return Validity(not_before=clock.now(), not_after=clock.now() + timedelta(hours=24))


def test_renews_at_half_life_as_ztunnel() -> None:
    clock = FakeClock()
    validity = day_long(clock)
    assert validity.renew_at == clock.now() + timedelta(hours=12)
    wait = seconds_until_fetch(
        now=clock.now(),
        current=validity,
        failures=0,
        backoff=CertificateBackoff(),
        rng=random.Random(1),
    )
    assert wait == 12 * 3600
    clock.advance(11 * 3600)
    wait = seconds_until_fetch(
        now=clock.now(),
        current=validity,
        failures=0,
        backoff=CertificateBackoff(),
        rng=random.Random(1),
    )
    assert wait == 3600


def test_fetches_at_once_without_a_certificate_or_after_it_expired() -> None:
    clock = FakeClock()
    args = {"failures": 0, "backoff": CertificateBackoff(), "rng": random.Random(1)}
    assert seconds_until_fetch(now=clock.now(), current=None, **args) == 0  # type: ignore[arg-type]
    validity = day_long(clock)
    clock.advance(24 * 3600)
    assert seconds_until_fetch(now=clock.now(), current=validity, **args) == 0  # type: ignore[arg-type]


def test_a_certificate_already_past_half_life_does_not_cause_a_tight_loop() -> None:
    clock = FakeClock()
    validity = day_long(clock)
    clock.advance(13 * 3600)
    wait = seconds_until_fetch(
        now=clock.now(),
        current=validity,
        failures=0,
        backoff=CertificateBackoff(),
        rng=random.Random(1),
    )
    assert wait == MIN_REFRESH_SECONDS


def test_failures_back_off_even_while_a_valid_certificate_is_held() -> None:
    clock = FakeClock()
    wait = seconds_until_fetch(
        now=clock.now(),
        current=day_long(clock),
        failures=3,
        backoff=CertificateBackoff(jitter=0),
        rng=random.Random(1),
    )
    assert wait == 2.0


def test_backoff_schedule_doubles_from_half_a_second_to_the_150s_cap() -> None:
    backoff = CertificateBackoff(jitter=0)
    rng = random.Random(0)
    schedule = [backoff.delay(n, rng) for n in range(1, 12)]
    assert schedule == [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150]
    assert backoff.delay(10_000, rng) == 150


def test_jitter_stays_within_bounds_and_under_the_cap() -> None:
    backoff = CertificateBackoff()
    rng = random.Random(7)
    for failures in range(1, 20):
        base = min(150.0, 0.5 * 2 ** (failures - 1))
        for _ in range(50):
            delay = backoff.delay(failures, rng)
            assert base * 0.8 <= delay <= min(150.0, base * 1.2)


def test_jitter_comes_from_the_injected_random_source() -> None:
    backoff = CertificateBackoff()
    first = [backoff.delay(3, random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1
    assert backoff.delay(3, random.Random(43)) != first[0]


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 10, "maximum": 1}, {"multiplier": 0.5}, {"jitter": 1}]
)
def test_nonsense_backoff_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInput, match="backoff needs"):
        CertificateBackoff(**kwargs)
