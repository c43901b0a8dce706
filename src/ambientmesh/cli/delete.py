"""``ambientmesh delete -f PATH`` and ``ambientmesh delete KIND NAME...``."""

from __future__ import annotations

import argparse
from typing import Any

from ambientmesh.cli.apply import add_filename_flags, load_objects
from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, connect, namespace_of
from ambientmesh.cli.output import CommandFailed, print_error
from ambientmesh.errors import NotFound
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "delete",
        help="delete resources named in files or by kind and name",
        description="ambientmesh delete -f PATH | ambientmesh delete KIND NAME... [-n NS]",
    )
    parser.add_argument("kind", nargs="?", metavar="KIND", help="resource type, e.g. pods or ap")
    parser.add_argument("names", nargs="*", metavar="NAME")
    add_filename_flags(parser, required=False)
    add_namespace_flag(parser)
    add_cluster_flag(parser)
    parser.add_argument(
        "--ignore-not-found", action="store_true", help="treat a missing object as deleted"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    targets = _targets(args)
    failed = False
    with connect(args) as client:
        for kind, name, namespace in targets:
            try:
                client.delete(kind, name, namespace)
            except NotFound:
                if args.ignore_not_found:
                    continue
                print_error(f'{kind.qualified_plural} "{name}" not found')
                failed = True
                continue
            qualified = f"{kind.singular}.{kind.group}" if kind.group else kind.singular
            print(f'{qualified} "{name}" deleted')
    return 1 if failed else 0


def _targets(args: argparse.Namespace) -> list[tuple[KindInfo, str, str | None]]:
    if args.filename:
        if args.kind:
            raise CommandFailed(["give either -f PATH or KIND NAME, not both"], exit_code=2)
        _, objects = load_objects(args)
        # Last first: namespaces usually come first in a file, and deleting one deletes its
        # contents at once, which would make every later delete in the file a NotFound.
        return [
            (
                kinds.lookup(obj["apiVersion"], obj["kind"]),
                obj["metadata"]["name"],
                obj["metadata"].get("namespace"),
            )
            for obj in reversed(objects)
        ]
    if not args.kind or not args.names:
        raise CommandFailed(
            ["you must give -f PATH, or a resource type and at least one name"], exit_code=2
        )
    kind = kinds.resolve(args.kind)
    namespace = namespace_of(args) if kind.namespaced else None
    return [(kind, name, namespace) for name in args.names]
