"""What every resource command shares: the cluster to talk to and the namespace to act in."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ambientmesh.apiserver.client import ApiClient

DEFAULT_CLUSTER = "default"
DEFAULT_NAMESPACE = "default"


def add_cluster_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cluster",
        default=os.environ.get("AMBIENTMESH_CLUSTER", DEFAULT_CLUSTER),
        help="cluster to talk to (default: $AMBIENTMESH_CLUSTER or 'default')",
    )


def add_namespace_flag(parser: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: 'default')")
    if all_namespaces:
        parser.add_argument(
            "-A", "--all-namespaces", action="store_true", help="act across all namespaces"
        )


def namespace_of(args: argparse.Namespace) -> str:
    return args.namespace or DEFAULT_NAMESPACE


def connect(args: argparse.Namespace) -> ApiClient:
    """The API client for ``--cluster`` (``$AMBIENTMESH_SERVER`` overrides the address)."""
    from ambientmesh.apiserver.client import ApiClient

    return ApiClient.for_cluster(args.cluster)
