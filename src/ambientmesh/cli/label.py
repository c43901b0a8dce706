"""``ambientmesh label KIND NAME key=value... key-...``."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ambientmesh.apiserver.client import ApiClient
from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, connect, namespace_of
from ambientmesh.cli.output import CommandFailed
from ambientmesh.cli.printers import resource_name
from ambientmesh.errors import Conflict
from ambientmesh.resources import kinds

_ASSIGNMENT = re.compile(r"^(?P<key>[^=]+)=(?P<value>.*)$")
_REMOVAL = re.compile(r"^(?P<key>[^=]+)-$")
_ATTEMPTS = 5


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "label", help="add, change or remove labels on a resource", description=__doc__
    )
    parser.add_argument("kind", metavar="KIND")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("changes", nargs="+", metavar="key=value|key-")
    parser.add_argument(
        "--overwrite", action="store_true", help="allow changing the value of an existing label"
    )
    add_namespace_flag(parser)
    add_cluster_flag(parser)
    parser.set_defaults(run=run)


def parse_changes(changes: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` and ``key-`` arguments; a malformed one is a usage error."""
    assign: dict[str, str] = {}
    remove: list[str] = []
    for change in changes:
        if (match := _REMOVAL.match(change)) is not None:
            remove.append(match["key"])
        elif (match := _ASSIGNMENT.match(change)) is not None:
            assign[match["key"]] = match["value"]
        else:
            raise CommandFailed([f'invalid label change "{change}": use key=value or key-'], 2)
    both = sorted(set(assign) & set(remove))
    if both:
        raise CommandFailed([f"cannot both set and remove label {key!r}" for key in both], 2)
    return assign, remove


def run(args: argparse.Namespace) -> int:
    assign, remove = parse_changes(args.changes)
    kind = kinds.resolve(args.kind)
    namespace = namespace_of(args) if kind.namespaced else None
    with connect(args) as client:
        return _relabel(args, client, kind, namespace, (assign, remove))


def _relabel(
    args: argparse.Namespace,
    client: ApiClient,
    kind: kinds.KindInfo,
    namespace: str | None,
    changes: tuple[dict[str, str], list[str]],
) -> int:
    assign, remove = changes
    # Read-modify-write with the object's resourceVersion; retry if someone wrote in between.
    for _ in range(_ATTEMPTS):
        obj = client.get(kind, args.name, namespace)
        labels: dict[str, str] = dict(obj.get("metadata", {}).get("labels") or {})
        clashes = [
            f"'{key}' already has a value ({labels[key]}), and --overwrite is false"
            for key, value in assign.items()
            if key in labels and labels[key] != value and not args.overwrite
        ]
        if clashes:
            raise CommandFailed(clashes)
        updated = {**{k: v for k, v in labels.items() if k not in remove}, **assign}
        if updated == labels:
            print(f"{resource_name(kind, args.name)} not labeled")
            return 0
        obj.setdefault("metadata", {})["labels"] = updated
        try:
            client.update(obj)
        except Conflict:
            continue
        verb = "unlabeled" if remove and not assign else "labeled"
        print(f"{resource_name(kind, args.name)} {verb}")
        return 0
    raise CommandFailed([f"{resource_name(kind, args.name)} kept changing; try again"])
