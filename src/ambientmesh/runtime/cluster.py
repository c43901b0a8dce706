"""Bringing a local cluster up and down: the daemon, its readiness, and the cleanup.

Used by `ambientmesh up` and `ambientmesh down` (synchronous: a CLI waiting on a daemon).
`up` starts the runtime daemon detached (`python -m ambientmesh.cli.runtime_agent`), follows its
status file until the cluster is ready, and can wait for workloads; `down` stops the daemon
(which stops pods gracefully and removes the network), then removes whatever is left by name:
every namespace of the cluster and the processes inside, /etc/netns entries, the run directory
and, with `purge`, the persistent state. Running `down` twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.errors import AlreadyExists, Unavailable
from ambientmesh.linux import netns
from ambientmesh.resources import kinds
from ambientmesh.runtime import daemon, names, podref, readiness, report
from ambientmesh.runtime.network import ClusterNetwork
from ambientmesh.runtime.paths import ClusterPaths

AGENT_MODULE = "ambientmesh.cli.runtime_agent"
POLL = 0.2
DOWN_DEADLINE = 90.0  # pods get their grace (capped at 5 s by default), then the rest stops
LOG_TAIL = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class UpOptions:
    cluster: str
    nodes: int = 2
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    mesh: bool = False
    ztunnel_command: Sequence[str] = ()
    restart_backoff: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DownResult:
    daemon_stopped: bool
    namespaces: tuple[str, ...]
    removed_run_dir: bool
    removed_state_dir: bool

    @property
    def found(self) -> bool:
        return (
            self.daemon_stopped
            or bool(self.namespaces)
            or self.removed_run_dir
            or self.removed_state_dir
        )


def running_daemon(paths: ClusterPaths) -> int | None:
    """The pid of this cluster's daemon, if it is alive."""
    pid = daemon.read_pid(paths.supervisor_pid)
    if pid is None or not daemon.alive(pid):
        return None
    return pid if daemon.cmdline_has(pid, AGENT_MODULE, paths.cluster) else None


def check_absent(paths: ClusterPaths) -> None:
    """Refuse to create a cluster that exists (fully or as leftovers), with the way out."""
    name = paths.cluster
    hint = (
        f"change it with `ambientmesh apply --cluster {name} -f ...`; "
        f"remove it with `ambientmesh down --name {name}`"
    )
    if running_daemon(paths) is not None:
        raise AlreadyExists(f"cluster {name!r} is already running; {hint}")
    router = names.router_netns(name)
    leftover = router if netns.exists(router) else paths.run_dir if paths.run_dir.exists() else None
    if leftover is not None:
        raise AlreadyExists(
            f"cluster {name!r} has leftovers from an earlier run ({leftover}); "
            f"remove them with `ambientmesh down --name {name}`"
        )


def start(options: UpOptions, paths: ClusterPaths) -> int:
    """Start the runtime daemon; its pid. Creates the run directory (the state one if needed)."""
    paths.run_dir.mkdir(parents=True, mode=0o755)
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [
        sys.executable, "-m", AGENT_MODULE,
        "--cluster", paths.cluster,
        "--run-dir", str(paths.run_dir),
        "--state-dir", str(paths.state_dir),
        "--nodes", str(options.nodes),
        "--pod-cidr", options.pod_cidr,
        "--service-cidr", options.service_cidr,
        "--restart-backoff", f"{options.restart_backoff:g}",
        "--mesh" if options.mesh else "--no-mesh",
    ]  # fmt: skip
    if options.ztunnel_command:
        argv += ["--ztunnel-command", shlex.join(options.ztunnel_command)]
    pid = daemon.spawn(argv, log_path=paths.supervisor_log)
    daemon.write_pid(paths.supervisor_pid, pid)
    return pid


def wait_started(
    pid: int, paths: ClusterPaths, *, timeout: float, on_step: Callable[[str], None]
) -> report.Report:
    """Follow the daemon's status file until it reports ready; Unavailable if it fails."""
    seen = 0
    end = time.monotonic() + timeout
    while True:
        current = report.read(paths.status_file)
        if current is not None:
            for step in current.steps[seen:]:
                on_step(step)
            seen = len(current.steps)
            if current.phase == report.READY:
                return current
            if current.phase == report.FAILED:
                raise Unavailable(f"the cluster failed to start: {current.message}{_tail(paths)}")
        if not daemon.alive(pid):
            raise Unavailable(f"the runtime daemon exited while starting{_tail(paths)}")
        if time.monotonic() >= end:
            raise Unavailable(f"the cluster did not start within {timeout:.0f} s{_tail(paths)}")
        time.sleep(POLL)


def api_client(paths: ClusterPaths) -> ApiClient:
    return ApiClient(ServerAddress(socket=paths.api_socket))


def wait_workloads(
    client: ApiClient, *, timeout: float, on_progress: Callable[[readiness.Verdict], None]
) -> readiness.Verdict:
    """Poll until every workload is ready, or only stuck ones remain, or `timeout` passes."""
    end = time.monotonic() + timeout
    last: tuple[readiness.Waiting, ...] | None = None
    while True:
        pods = client.list(kinds.lookup("v1", "Pod")).items
        deployments = client.list(kinds.lookup("apps/v1", "Deployment")).items
        current = readiness.verdict(pods, deployments)
        if current.waiting != last:
            on_progress(current)
            last = current.waiting
        if current.ready or current.stuck or time.monotonic() >= end:
            return current
        time.sleep(POLL)


def down(paths: ClusterPaths, *, purge: bool) -> DownResult:
    """Stop and remove everything of the cluster; safe when nothing (or only a part) is left."""
    pid = running_daemon(paths)
    if pid is not None:
        daemon.stop(pid, deadline=DOWN_DEADLINE)
    # Whatever the daemon could not remove (it crashed, or was killed): find it by name.
    removed = asyncio.run(ClusterNetwork(paths.cluster).teardown())
    run_dir = paths.run_dir.exists()
    shutil.rmtree(paths.run_dir, ignore_errors=True)
    state_dir = purge and paths.state_dir.exists()
    if purge:
        shutil.rmtree(paths.state_dir, ignore_errors=True)
    for root in (paths.run_dir.parent, *((paths.state_dir.parent,) if purge else ())):
        with contextlib.suppress(OSError):  # not empty: another cluster lives there
            root.rmdir()
    return DownResult(
        daemon_stopped=pid is not None,
        namespaces=tuple(removed),
        removed_run_dir=run_dir,
        removed_state_dir=state_dir,
    )


def _tail(paths: ClusterPaths) -> str:
    try:
        lines = paths.supervisor_log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    except OSError:
        return ""
    if not lines:
        return ""
    shown = "\n  ".join(lines)
    return f"\nlast lines of {paths.supervisor_log}:\n  {shown}"


def client_for(cluster: str) -> ApiClient:
    """The API client for `cluster`: $AMBIENTMESH_SERVER if set, else the cluster's socket
    under the run root ($AMBIENTMESH_RUN_ROOT or /run/ambientmesh)."""
    if os.environ.get("AMBIENTMESH_SERVER", "").strip():
        return ApiClient(ServerAddress.for_cluster(cluster))
    return api_client(ClusterPaths.for_cluster(cluster))


def fetch_pod(client: ApiClient, namespace: str, target: str) -> dict[str, Any]:
    """The pod named by `target` (NAME, pod/NAME or deploy/NAME) in `namespace`."""
    wanted = podref.parse_target(target)
    if wanted.kind == "pod":
        return client.get(kinds.lookup("v1", "Pod"), wanted.name, namespace)
    deployment = client.get(kinds.lookup("apps/v1", "Deployment"), wanted.name, namespace)
    pods = client.list(kinds.lookup("v1", "Pod"), namespace).items
    return podref.pick_pod(deployment, pods)
