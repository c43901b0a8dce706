"""Fixtures for store tests: a fresh SQLite store per test, a fake clock, fixed randomness."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ambientmesh.store.store import Store, StoreConfig
from ambientmesh.testing.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    with Store(tmp_path / "store.db", clock=clock, rng=random.Random(7)) as opened:
        yield opened


@pytest.fixture
def small_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A store that keeps only the last 10 changes of history."""
    config = StoreConfig(event_retention=10)
    with Store(tmp_path / "small.db", clock=clock, config=config, rng=random.Random(7)) as opened:
        yield opened
