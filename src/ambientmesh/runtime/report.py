"""The runtime daemon's progress as a small JSON file, for `ambientmesh up` to follow.

    {"pid": 123, "phase": "starting" | "ready" | "stopping" | "failed",
     "steps": ["control plane ready", ...], "message": "...", "mesh": true, "nodes": [...]}

Written atomically (write, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STARTING, READY, STOPPING, FAILED = "starting", "ready", "stopping", "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    pid: int
    phase: str = STARTING
    steps: tuple[str, ...] = ()
    message: str = ""
    mesh: bool = False
    nodes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "phase": self.phase,
            "steps": list(self.steps),
            "message": self.message,
            "mesh": self.mesh,
            "nodes": list(self.nodes),
        }

    @classmethod
    def from_json(cls, data: Any) -> Report:
        if not isinstance(data, dict):
            raise ValueError("the status file holds no JSON object")
        return cls(
            pid=int(data.get("pid", 0)),
            phase=str(data.get("phase", STARTING)),
            steps=tuple(str(step) for step in data.get("steps") or []),
            message=str(data.get("message", "")),
            mesh=bool(data.get("mesh", False)),
            nodes=tuple(str(node) for node in data.get("nodes") or []),
        )


@dataclass(slots=True)
class Reporter:
    """Keeps the status file up to date as the daemon makes progress."""

    path: Path
    mesh: bool = False
    nodes: Sequence[str] = ()
    _steps: list[str] = field(default_factory=list)
    _phase: str = STARTING

    def step(self, text: str) -> None:
        log.info("%s", text)
        self._steps.append(text)
        self._write("")

    def phase(self, phase: str, message: str = "") -> None:
        self._phase = phase
        self._write(message)

    def _write(self, message: str) -> None:
        report = Report(
            pid=os.getpid(),
            phase=self._phase,
            steps=tuple(self._steps),
            message=message,
            mesh=self.mesh,
            nodes=tuple(self.nodes),
        )
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(report.to_json()) + "\n")
        os.replace(temporary, self.path)


def read(path: Path) -> Report | None:
    """The last report, or None if there is none (yet) or it cannot be read."""
    try:
        return Report.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
