"""``ambientmesh down [--name CLUSTER] [--purge]``: remove a local cluster; safe to run twice.

Stops the pods (SIGTERM, then SIGKILL after their grace period, capped at a few seconds), the
ztunnels and the control plane, and removes every network namespace, link, nftables table and
runtime file of the cluster. The store and the CA stay for the next `up` unless `--purge`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ambientmesh.cli.context import DEFAULT_CLUSTER
from ambientmesh.cli.output import CommandFailed


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "down", help="remove a local cluster", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--name", "--cluster", dest="cluster",
        default=os.environ.get("AMBIENTMESH_CLUSTER", DEFAULT_CLUSTER),
        help="cluster name (default: $AMBIENTMESH_CLUSTER or 'default')",
    )  # fmt: skip
    parser.add_argument(
        "--purge", action="store_true", help="also delete the stored resources and the CA"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.runtime import cluster
    from ambientmesh.runtime.names import validate_cluster_name
    from ambientmesh.runtime.paths import ClusterPaths

    validate_cluster_name(args.cluster)
    if os.geteuid() != 0:
        raise CommandFailed(["ambientmesh down needs root: it removes network namespaces"])
    paths = ClusterPaths.for_cluster(args.cluster)
    result = cluster.down(paths, purge=args.purge)
    if not result.found:
        print(f'Cluster "{args.cluster}" is not running; nothing to remove.')
        return 0
    parts = []
    if result.daemon_stopped:
        parts.append("stopped its processes")
    if result.namespaces:
        parts.append(f"removed {len(result.namespaces)} network namespaces")
    if result.removed_run_dir:
        parts.append(f"removed {paths.run_dir}")
    if result.removed_state_dir:
        parts.append(f"purged {paths.state_dir}")
    print(f'Cluster "{args.cluster}" is down: {"; ".join(parts)}.')
    if not args.purge and paths.state_dir.exists():
        print(f"Its resources stay in {paths.state_dir} for the next `ambientmesh up "
              f"--name {args.cluster}`; `--purge` deletes them.")  # fmt: skip
    return 0
