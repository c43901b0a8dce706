"""Fixtures of the runtime's end-to-end tests (the cluster helpers are in `localcluster`)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run and state roots for clusters; short, as unix socket paths under it must fit 107 bytes."""
    return tmp_path_factory.mktemp("am")
