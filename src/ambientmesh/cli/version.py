"""``ambientmesh version``."""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

from ambientmesh import __version__


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("version", help="print the client version")
    parser.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    info = {"version": __version__, "python": platform.python_version()}
    if args.output == "json":
        print(json.dumps({"clientVersion": info}, indent=2))
    elif args.output == "yaml":
        print(f"clientVersion:\n  version: {__version__}\n  python: {info['python']}")
    else:
        print(f"ambientmesh {__version__} (python {info['python']})")
    return 0
