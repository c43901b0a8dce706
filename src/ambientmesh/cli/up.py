"""``ambientmesh up [-f PATH...] [--nodes N] [--name CLUSTER]``: a whole cluster on this host.

Validates the manifests first (nothing is created if one is invalid), starts the cluster in the
background, applies the manifests in one batch (all or nothing) and returns once every pod is
Running and Ready, printing what it waits for. If the cluster cannot start or the batch is
refused, everything it created is removed again.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any

from ambientmesh.cli.apply import add_filename_flags, load_objects
from ambientmesh.cli.context import DEFAULT_CLUSTER
from ambientmesh.cli.output import CommandFailed
from ambientmesh.cli.printers import resource_name
from ambientmesh.resources import kinds

if TYPE_CHECKING:
    from ambientmesh.apiserver.client import ApiClient
    from ambientmesh.runtime.cluster import UpOptions
    from ambientmesh.runtime.paths import ClusterPaths

START_TIMEOUT = 120.0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="create a local cluster on this host and apply manifests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_filename_flags(parser, required=False)
    parser.add_argument(
        "--name", "--cluster", dest="cluster",
        default=os.environ.get("AMBIENTMESH_CLUSTER", DEFAULT_CLUSTER),
        help="cluster name (default: $AMBIENTMESH_CLUSTER or 'default')",
    )  # fmt: skip
    parser.add_argument("--nodes", type=int, default=2, help="number of nodes (default: 2)")
    parser.add_argument("--pod-cidr", default="10.244.0.0/16", help="node i gets the i-th /24")
    parser.add_argument("--service-cidr", default="10.96.0.0/16", help="Service cluster IPs")
    parser.add_argument(
        "--mesh", action=argparse.BooleanOptionalAction, default=None,
        help="run a ztunnel on every node (default: when this build has the ztunnel command)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=180.0, metavar="SECONDS",
        help="how long to wait for the pods to be ready (default: 180)",
    )  # fmt: skip
    parser.add_argument(
        "--restart-backoff", type=float, default=10.0, metavar="SECONDS",
        help="first delay before a crashed container restarts (Kubernetes: 10)",
    )  # fmt: skip
    parser.add_argument("--ztunnel-command", help=argparse.SUPPRESS)
    parser.add_argument("-n", "--namespace", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.runtime import cluster
    from ambientmesh.runtime.ipam import Addressing
    from ambientmesh.runtime.names import validate_cluster_name
    from ambientmesh.runtime.paths import ClusterPaths

    validate_cluster_name(args.cluster)
    addressing = Addressing.parse(pod_cidr=args.pod_cidr, service_cidr=args.service_cidr)
    if not 1 <= args.nodes < addressing.max_nodes:
        raise CommandFailed([f"--nodes must be between 1 and {addressing.max_nodes - 1}"], 2)
    if args.timeout <= 0 or args.restart_backoff < 0:
        raise CommandFailed(["--timeout must be positive and --restart-backoff not negative"], 2)
    _require_root()
    objects = load_objects(args)[1] if args.filename else []
    options = cluster.UpOptions(
        cluster=args.cluster,
        nodes=args.nodes,
        pod_cidr=args.pod_cidr,
        service_cidr=args.service_cidr,
        mesh=_mesh_wanted(args),
        ztunnel_command=tuple(shlex.split(args.ztunnel_command or "")),
        restart_backoff=args.restart_backoff,
    )
    paths = ClusterPaths.for_cluster(args.cluster)
    paths.check_socket_paths([f"node-{i}" for i in range(1, args.nodes + 1)])
    cluster.check_absent(paths)
    _warn_images(objects)
    return _bring_up(options, paths, objects, timeout=args.timeout)


def _bring_up(
    options: UpOptions, paths: ClusterPaths, objects: list[dict[str, Any]], *, timeout: float
) -> int:
    from ambientmesh.runtime import cluster

    began = time.monotonic()
    mesh = "with a ztunnel on every node" if options.mesh else "without ztunnel (no mesh)"
    print(f'Creating cluster "{options.cluster}": {options.nodes} nodes, {mesh}')
    client = _start_and_apply(options, paths, objects)
    verdict = cluster.wait_workloads(client, timeout=timeout, on_progress=_progress)
    _summary(options.cluster, client, time.monotonic() - began)
    if not verdict.ready:
        lines = [f"{item.what}: {item.why}" for item in verdict.waiting]
        where = "" if options.cluster == DEFAULT_CLUSTER else f" --cluster {options.cluster}"
        hint = (
            f"the cluster is running: inspect it with `ambientmesh get pods -A{where}` and "
            f"`ambientmesh logs{where} POD`; remove it with "
            f"`ambientmesh down --name {options.cluster}`"
        )
        raise CommandFailed(["not everything became ready:", *lines, hint])
    return 0


def _start_and_apply(
    options: UpOptions, paths: ClusterPaths, objects: list[dict[str, Any]]
) -> ApiClient:
    """Start the cluster and apply the batch; on any failure remove what was created."""
    from ambientmesh.runtime import cluster

    fresh_state = not paths.state_dir.exists()
    try:
        pid = cluster.start(options, paths)
        cluster.wait_started(pid, paths, timeout=START_TIMEOUT, on_step=lambda s: print(f"  {s}"))
        client = cluster.api_client(paths)
        for result in client.apply(objects) if objects else []:
            print(f"{resource_name(kinds.by_kind(result.kind), result.name)} {result.action}")
    except BaseException:
        print(f'Removing the half-created cluster "{options.cluster}"', file=sys.stderr)
        cluster.down(paths, purge=fresh_state)
        raise
    return client


def _mesh_wanted(args: argparse.Namespace) -> bool:
    """`--mesh` if asked; by default whenever ztunnel can run (this build, or a given command)."""
    available = bool(args.ztunnel_command) or "ztunnel" in _commands()
    if "control-plane" not in _commands():
        raise CommandFailed(["this installation has no `control-plane` command to run"])
    if args.mesh and not available:
        raise CommandFailed(["--mesh: this build has no `ambientmesh ztunnel` command yet"], 2)
    return available if args.mesh is None else bool(args.mesh)


def _commands() -> set[str]:
    from ambientmesh.cli.main import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _require_root() -> None:
    if os.geteuid() != 0:
        raise CommandFailed(
            ["ambientmesh up needs root: it creates network namespaces and nftables rules"]
        )


def _warn_images(objects: list[dict[str, Any]]) -> None:
    from ambientmesh.runtime.podplan import image_warnings

    for line in image_warnings(objects):
        print(line, file=sys.stderr)


def _progress(verdict: Any) -> None:
    if verdict.ready:
        print(f"  all {verdict.pods_total} pods ready")
        return
    shown = [f"{item.what} ({item.why})" for item in verdict.waiting[:3]]
    more = f" and {len(verdict.waiting) - 3} more" if len(verdict.waiting) > 3 else ""
    print(f"  {verdict.pods_ready}/{verdict.pods_total} pods ready; waiting for "
          f"{', '.join(shown)}{more}")  # fmt: skip


def _summary(name: str, client: Any, seconds: float) -> None:
    from ambientmesh.runtime.summary import summary_lines

    pods = client.list(kinds.lookup("v1", "Pod")).items
    services = client.list(kinds.lookup("v1", "Service")).items
    nodes = client.list(kinds.lookup("v1", "Node")).items
    for line in summary_lines(name, nodes=nodes, pods=pods, services=services, seconds=seconds):
        print(line)
