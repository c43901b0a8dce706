"""Argument parsing and dispatch; each command group lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from ambientmesh.cli import (
    apply,
    ca,
    control_plane,
    delete,
    down,
    get,
    label,
    logs,
    up,
    version,
    waypoint,
    ztunnel,
    ztunnel_config,
)
from ambientmesh.cli import exec as exec_
from ambientmesh.cli.output import CommandFailed, print_error
from ambientmesh.errors import MeshError

# Each module exposes ``register(subparsers)``, which adds its commands and sets ``run``.
COMMANDS: tuple[ModuleType, ...] = (
    up,
    down,
    apply,
    get,
    delete,
    label,
    exec_,
    logs,
    ztunnel_config,
    ca,
    control_plane,
    ztunnel,
    waypoint,
    version,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ambientmesh",
        description="A sidecarless service mesh compatible with Istio's ambient mode.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except CommandFailed as failure:
        for line in failure.lines:
            print_error(line)
        return failure.exit_code
    except MeshError as error:
        for line in error.message.splitlines() or [type(error).__name__]:
            print_error(line)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
