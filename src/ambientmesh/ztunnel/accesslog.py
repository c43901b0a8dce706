"""Access log lines (reference 5.2) and the process's logging set-up (text or JSON).

Connection lines go to the ``access`` logger as already-rendered text, so one handler with a
bare format prints them as ``telemetry`` rendered them; everything else logs through the
normal loggers in the same format (``--log-format json`` makes both JSON). Levels change at
run time through the admin endpoint ``/logging``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput
from ambientmesh.ztunnel.config import LogFormat
from ambientmesh.ztunnel.model import SocketAddr
from ambientmesh.ztunnel.telemetry import (
    ConnectionOutcome,
    ConnectionRecord,
    Reporter,
    access_log_fields,
    access_log_level,
    early_failure_fields,
    render_json,
    render_text,
)

ACCESS_LOGGER = "access"
_OFF = logging.CRITICAL + 10
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


class InvalidLevel(InvalidInput):
    """A ``/logging`` request named a level that does not exist."""


class AccessLog:
    """Writes "connection complete" and "connection failed" lines for the proxies."""

    def __init__(self, *, clock: Clock, log_format: LogFormat) -> None:
        self._clock = clock
        self._render = render_json if log_format is LogFormat.JSON else render_text
        self._logger = logging.getLogger(ACCESS_LOGGER)

    def complete(self, record: ConnectionRecord, outcome: ConnectionOutcome) -> None:
        level = access_log_level(outcome)
        if self._logger.isEnabledFor(_LEVELS[level]):
            fields = access_log_fields(record, outcome)
            line = self._render(self._clock.now(), level, "connection complete", fields)
            self._logger.log(_LEVELS[level], line)

    def failed(self, src: SocketAddr, dst: SocketAddr, reporter: Reporter, error: str) -> None:
        if self._logger.isEnabledFor(logging.WARNING):
            fields = early_failure_fields(src, dst, reporter, error)
            self._logger.warning(
                self._render(self._clock.now(), "warn", "connection failed", fields)
            )


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        document = {
            "level": record.levelname.lower(),
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "scope": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document, separators=(",", ":"))


def configure_logging(
    log_format: LogFormat, *, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Process-wide logging for a proxy process: one line per event on ``stream`` (stderr)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if log_format is LogFormat.JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    bare = logging.StreamHandler(stream)
    bare.setFormatter(logging.Formatter("%(message)s"))  # lines arrive rendered
    access.handlers[:] = [bare]
    access.propagate = False
    access.setLevel(logging.INFO)


def log_levels() -> dict[str, str]:
    """The current level of the root logger and of every logger set explicitly."""
    levels = {"default": _level_name(logging.getLogger().level)}
    for name, logger in sorted(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = _level_name(logger.level)
    return levels


def _level_name(level: int) -> str:
    for name, value in _LEVELS.items():
        if level <= value:
            return name
    return "off"


def set_log_levels(spec: str) -> Mapping[str, str]:
    """Apply ``level`` or ``scope:level,scope:level`` (ztunnel's ``/logging?level=`` syntax);
    InvalidLevel names the bad part and nothing is changed."""
    changes: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        scope, _, name = part.rpartition(":")
        level = {**_LEVELS, "warning": logging.WARNING, "off": logging.CRITICAL + 10}.get(
            name.lower()
        )
        if level is None:
            raise InvalidLevel(
                f"unknown log level {name!r} in {part!r}; use debug, info, warn, error or off"
            )
        changes[scope] = level
    if not changes:
        raise InvalidLevel("no log level given; use level=<level> or level=<scope>:<level>,...")
    for scope, level in changes.items():
        logging.getLogger(scope or None).setLevel(level)
    return log_levels()
