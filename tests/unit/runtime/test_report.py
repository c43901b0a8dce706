"""The daemon's progress file that `ambientmesh up` follows."""

from __future__ import annotations

import os
from pathlib import Path

from ambientmesh.runtime import report


def test_steps_and_phases_are_written_atomically_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert report.read(path) is None
    reporter = report.Reporter(path, mesh=True, nodes=["node-1"])
    reporter.step("control plane ready")
    reporter.phase(report.READY)
    current = report.read(path)
    assert current == report.Report(
        pid=os.getpid(), phase="ready", steps=("control plane ready",), mesh=True, nodes=("node-1",)
    )
    reporter.phase(report.FAILED, "the control plane exited")
    failed = report.read(path)
    assert failed is not None
    assert (failed.phase, failed.message) == ("failed", "the control plane exited")
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left


def test_unreadable_files_read_as_nothing(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text("{not json")
    assert report.read(path) is None
    path.write_text("[]")
    assert report.read(path) is None
