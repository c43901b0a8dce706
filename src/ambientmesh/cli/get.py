"""``ambientmesh get KIND[,KIND...] [NAME...]``: tables for people, JSON and YAML for programs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from ambientmesh.apiserver.client import ApiClient
from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, connect, namespace_of
from ambientmesh.cli.printers import as_list, dump, resource_name, table
from ambientmesh.resources import kinds


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("get", help="display one or many resources")
    parser.add_argument("kind", metavar="KIND", help="resource type(s), comma-separated")
    parser.add_argument("names", nargs="*", metavar="NAME")
    add_namespace_flag(parser, all_namespaces=True)
    add_cluster_flag(parser)
    parser.add_argument("-l", "--selector", help="label selector, e.g. app=web,tier!=db")
    parser.add_argument("--field-selector", help="field selector, e.g. spec.nodeName=node-1")
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "wide", "json", "yaml", "name"),
        default="table",
        help="output format",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    kind_infos = [kinds.resolve(name) for name in args.kind.split(",") if name]
    with connect(args) as client:
        return _print(args, client, kind_infos)


def _print(args: argparse.Namespace, client: ApiClient, kind_infos: list[kinds.KindInfo]) -> int:
    now = datetime.now(UTC)
    collected: list[dict[str, Any]] = []
    printed_table = False
    for kind in kind_infos:
        namespace = _namespace(args, kind)
        if args.names:
            objects = [client.get(kind, name, namespace) for name in args.names]
        else:
            listed = client.list(
                kind, namespace, label_selector=args.selector, field_selector=args.field_selector
            )
            objects = list(listed.items)
        if args.output in ("json", "yaml"):
            collected += objects
        elif args.output == "name":
            for obj in objects:
                print(resource_name(kind, obj["metadata"]["name"]))
        elif objects:
            if printed_table:
                print()
            print(
                table(
                    kind,
                    objects,
                    now=now,
                    with_namespace=bool(args.all_namespaces) and kind.namespaced,
                    wide=args.output == "wide",
                )
            )
            printed_table = True
    if args.output in ("json", "yaml"):
        single = len(args.names) == 1 and len(kind_infos) == 1
        print(dump(collected[0] if single else as_list(collected), args.output))
    elif args.output in ("table", "wide") and not printed_table:
        where = "" if args.all_namespaces else f" in {namespace_of(args)} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
    return 0


def _namespace(args: argparse.Namespace, kind: kinds.KindInfo) -> str | None:
    if not kind.namespaced or args.all_namespaces:
        return None
    return namespace_of(args)
