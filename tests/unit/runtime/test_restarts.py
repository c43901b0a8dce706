"""Restart policy and CrashLoopBackOff timing, as Kubernetes' kubelet does it."""

from __future__ import annotations

import pytest

from ambientmesh.backoff import Backoff
from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.restarts import (
    KUBELET_BACKOFF,
    RestartPolicy,
    restart_delay,
    should_restart,
)


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 137, True),
        ("Never", 1, False),
        ("Never", 0, False),
    ],
)
def test_restart_policy_matches_kubernetes(policy: str, code: int, expected: bool) -> None:
    assert should_restart(RestartPolicy.parse(policy), code) is expected


def test_unknown_policy_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="Always, OnFailure, Never"):
        RestartPolicy.parse("Sometimes")


def test_backoff_starts_at_ten_seconds_doubles_and_caps_at_five_minutes_like_kubelet() -> None:
    backoff = KUBELET_BACKOFF
    delays, delay = [], None
    for _ in range(7):
        delay = restart_delay(backoff, delay, ran_for=1)
        delays.append(delay)
    assert delays == [10, 20, 40, 80, 160, 300, 300]


def test_a_long_run_forgets_earlier_crashes() -> None:
    backoff = KUBELET_BACKOFF
    assert restart_delay(backoff, 300, ran_for=599) == 300
    assert restart_delay(backoff, 300, ran_for=600) == 10


def test_backoff_bounds_are_checked() -> None:
    with pytest.raises(InvalidInput):
        Backoff(initial=20, maximum=10)
