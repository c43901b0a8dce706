"""Reconnect backoff: the client's schedule jitters, so a fleet does not reconnect in lockstep."""

from __future__ import annotations

import random

from ambientmesh.backoff import Retry
from ambientmesh.xds.client import RECONNECT_BACKOFF


def test_jitter_spreads_a_fleet() -> None:
    delays = {Retry(RECONNECT_BACKOFF, random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) == 20
