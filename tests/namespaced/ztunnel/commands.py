"""``python -m tests.namespaced.ztunnel.commands ztunnel|waypoint ...``: the two commands under
test, runnable whether or not ``ambientmesh``'s command table lists them yet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ambientmesh.cli import waypoint, ztunnel
from ambientmesh.cli.output import CommandFailed, print_error
from ambientmesh.errors import MeshError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ambientmesh")
    subparsers = parser.add_subparsers(dest="command", required=True)
    ztunnel.register(subparsers)
    waypoint.register(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CommandFailed as failure:
        for line in failure.lines:
            print_error(line)
        return failure.exit_code
    except MeshError as error:
        print_error(error.message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
