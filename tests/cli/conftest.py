"""A real API server on a unix socket for CLI tests, found through $AMBIENTMESH_SERVER."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.apiserver.conftest import RunningServer, options_for, serve

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    # Unix socket paths are limited to 108 bytes, so not under pytest's long tmp_path.
    directory = Path(tempfile.mkdtemp(prefix="am-cli-", dir="/tmp"))
    try:
        options = options_for(directory)
        with serve(options) as running:
            monkeypatch.setenv("AMBIENTMESH_SERVER", str(options.socket))
            yield running
    finally:
        shutil.rmtree(directory, ignore_errors=True)
