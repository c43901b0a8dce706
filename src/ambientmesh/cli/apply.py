"""``ambientmesh apply -f PATH...``: validate every document, then apply them all or none."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, connect, namespace_of
from ambientmesh.cli.output import CommandFailed
from ambientmesh.cli.printers import resource_name
from ambientmesh.resources import kinds
from ambientmesh.resources.loader import Document, load_paths, prepare, validate_documents
from ambientmesh.runtime.podplan import image_warnings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="create or update resources from files or directories",
        description="Validate every document first; if any is invalid, nothing is applied.",
    )
    add_filename_flags(parser, required=True)
    add_namespace_flag(parser)
    add_cluster_flag(parser)
    parser.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        choices=("none", "client", "server"),
        default="none",
        help="client: validate locally without a server; server: ask the server what would change",
    )
    parser.set_defaults(run=run)


def add_filename_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=required,
        metavar="PATH",
        help="file, directory or - for stdin; repeatable",
    )
    parser.add_argument(
        "-R", "--recursive", action="store_true", help="descend into directories given with -f"
    )


def load_objects(args: argparse.Namespace) -> tuple[list[Document], list[dict[str, Any]]]:
    """Load and validate every document, each prepared for the namespace given with ``-n``."""
    documents = load_paths(args.filename, recursive=args.recursive)
    validate_documents(documents)
    wanted = namespace_of(args)
    objects = []
    problems = []
    for document in documents:
        obj = prepare(document.obj, default_namespace=wanted)
        namespace = obj.get("metadata", {}).get("namespace")
        if args.namespace and namespace and namespace != args.namespace:
            problems.append(
                f"{document.source}: document {document.index} ({document.describe()}): "
                f'the namespace from the provided object "{namespace}" does not match '
                f'the namespace "{args.namespace}"; pass --namespace={namespace} or omit -n'
            )
        objects.append(obj)
    if problems:
        raise CommandFailed(problems)
    return documents, objects


def run(args: argparse.Namespace) -> int:
    documents, objects = load_objects(args)
    if not documents:
        raise CommandFailed(["no objects passed to apply"])
    for line in image_warnings(objects):
        print(line, file=sys.stderr)
    if args.dry_run == "client":
        for obj in objects:
            print(f"{_name(obj)} validated (dry run)")
        return 0
    with connect(args) as client:
        results = client.apply(objects, dry_run=args.dry_run == "server")
    suffix = " (server dry run)" if args.dry_run == "server" else ""
    for result in results:
        kind = kinds.by_kind(result.kind)
        print(f"{resource_name(kind, result.name)} {result.action}{suffix}")
    return 0


def _name(obj: dict[str, Any]) -> str:
    kind = kinds.lookup(obj["apiVersion"], obj["kind"])
    return resource_name(kind, obj["metadata"]["name"])
