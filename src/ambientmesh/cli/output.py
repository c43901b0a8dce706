"""Shared output conventions: errors on stderr, one line per problem, kubectl's exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterable


class CommandFailed(Exception):
    """A command could not do what was asked; ``lines`` go to stderr."""

    def __init__(self, lines: Iterable[str], exit_code: int = 1) -> None:
        self.lines = tuple(lines)
        self.exit_code = exit_code
        super().__init__("; ".join(self.lines))


def print_error(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
