"""``ambientmesh logs [-n NS] POD [-c CONTAINER] [-f] [--tail N] [-p]``: a container's output.

Reads the log file the kubelet writes for the container (stdout and stderr together). With
`-f` it keeps printing what the container writes, across restarts, until the pod finishes or
is deleted (or Ctrl-C). `-p` shows the run before the last restart.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from ambientmesh.cli.context import add_cluster_flag, add_namespace_flag, namespace_of
from ambientmesh.cli.output import CommandFailed

FOLLOW_POLL = 0.2
STATUS_POLL = 1.0
CHUNK = 1 << 16


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "logs", help="print the logs of a container in a pod", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("target", metavar="POD", help="pod name, pod/NAME or deploy/NAME")
    parser.add_argument("-c", "--container", help="container name (default: the first)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    parser.add_argument(
        "--tail", type=int, default=-1, metavar="N", help="only the last N lines (default: all)"
    )
    parser.add_argument(
        "-p", "--previous", action="store_true", help="the run before the last restart"
    )
    add_namespace_flag(parser)
    add_cluster_flag(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.runtime import cluster
    from ambientmesh.runtime.paths import ClusterPaths
    from ambientmesh.runtime.podref import container_name
    from ambientmesh.runtime.processes import previous_log

    with cluster.client_for(args.cluster) as client:
        pod = cluster.fetch_pod(client, namespace_of(args), args.target)
        name, note = container_name(pod, args.container)
        if note is not None:
            print(note, file=sys.stderr)
        metadata = pod["metadata"]
        paths = ClusterPaths.for_cluster(args.cluster)
        path = paths.container_log(metadata["namespace"], metadata["name"], metadata["uid"], name)
        if args.previous:
            path = previous_log(path)
        if not path.exists():
            raise CommandFailed([_missing(pod, name, previous=args.previous)])
        offset = _print_tail(path, args.tail)
        if args.follow and not args.previous:
            _follow(path, offset, lambda: _still_running(client, metadata))
    return 0


def _missing(pod: dict[str, Any], container: str, *, previous: bool) -> str:
    name = pod["metadata"]["name"]
    if previous:
        return f'previous terminated container "{container}" in pod "{name}" not found'
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if status.get("name") == container and waiting:
            reason = waiting.get("reason", "waiting")
            return f'container "{container}" in pod "{name}" is waiting to start: {reason}'
    return f'container "{container}" in pod "{name}" has no logs on this host'


def _print_tail(path: Path, lines: int) -> int:
    """Print the file (its last `lines` lines if >= 0); return the offset printed up to."""
    with path.open("rb") as file:
        data = file.read()
    end = len(data)
    if lines >= 0:
        data = b"".join(data.splitlines(keepends=True)[-lines:]) if lines else b""
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return end


def _follow(path: Path, offset: int, running: Any) -> None:
    """Print what is appended to `path`; a new file at `path` (a restart) is read from its start.

    A CLI following a file written by another process: polling is what `tail -f` does too.
    """
    inode = _inode(path)
    checked = time.monotonic()
    while True:
        current = _inode(path)
        if current is not None and current != inode:
            inode, offset = current, 0
        offset = _print_from(path, offset)
        if time.monotonic() - checked >= STATUS_POLL:
            checked = time.monotonic()
            if not running():
                _print_from(path, offset)
                return
        time.sleep(FOLLOW_POLL)


def _print_from(path: Path, offset: int) -> int:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            while chunk := file.read(CHUNK):
                sys.stdout.buffer.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        return offset
    sys.stdout.flush()
    return offset


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _still_running(client: Any, metadata: dict[str, Any]) -> bool:
    from ambientmesh.errors import NotFound
    from ambientmesh.resources import kinds

    try:
        pod = client.get(kinds.lookup("v1", "Pod"), metadata["name"], metadata["namespace"])
    except NotFound:
        return False
    if pod["metadata"].get("uid") != metadata["uid"] or pod["metadata"].get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
