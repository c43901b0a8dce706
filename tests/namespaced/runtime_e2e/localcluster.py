"""A local cluster under test: brought up and down with the real CLI, inspected through the API.

Every cluster gets a name unique to this process (`t<pid>-<random>`), run and state roots under
the test's temporary directory (AMBIENTMESH_RUN_ROOT / AMBIENTMESH_STATE_ROOT), and is removed
with `ambientmesh down --purge` when the test ends, pass or fail.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.linux import netns
from ambientmesh.resources import kinds
from ambientmesh.runtime import names
from ambientmesh.runtime.paths import ClusterPaths

CLI = (sys.executable, "-m", "ambientmesh")
COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str


class LocalCluster:
    """One cluster under test and the commands to drive it."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.paths = ClusterPaths(
            cluster=name, run_dir=root / "run" / name, state_dir=root / "state" / name
        )
        self.env = {
            **os.environ,
            "AMBIENTMESH_RUN_ROOT": str(root / "run"),
            "AMBIENTMESH_STATE_ROOT": str(root / "state"),
            # `get`, `apply`, `label` and `delete` find this cluster's API server through it.
            "AMBIENTMESH_SERVER": str(self.paths.api_socket),
            "AMBIENTMESH_CLUSTER": name,
        }

    def cli(self, *argv: str, timeout: float = COMMAND_TIMEOUT) -> Result:
        done = subprocess.run(
            [*CLI, *argv], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return Result(done.returncode, done.stdout, done.stderr)

    def up(self, *argv: str, nodes: int = 2, mesh: bool = False) -> Result:
        extra = () if mesh else ("--no-mesh",)
        return self.cli(
            "up", "--name", self.name, "--nodes", str(nodes), "--restart-backoff", "1",
            "--timeout", "60", *extra, *argv,
        )  # fmt: skip

    def down(self, *argv: str) -> Result:
        return self.cli("down", "--name", self.name, *argv)

    def exec(self, target: str, *command: str, namespace: str = "default") -> Result:
        return self.cli("exec", "-n", namespace, target, "--", *command)

    def apply(self, path: Path) -> Result:
        return self.cli("apply", "-f", str(path))

    @contextmanager
    def api(self) -> Iterator[ApiClient]:
        with ApiClient(ServerAddress(socket=self.paths.api_socket)) as client:
            yield client

    def get(self, kind: str, name: str, namespace: str | None = "default") -> dict[str, Any]:
        info = kinds.resolve(kind)
        with self.api() as client:
            return client.get(info, name, namespace if info.namespaced else None)

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        with self.api() as client:
            return client.list(kinds.resolve(kind), namespace, label_selector=selector).items

    def wait(
        self,
        kind: str,
        condition: Callable[[list[dict[str, Any]]], bool],
        *,
        what: str,
        namespace: str | None = None,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Return the objects of `kind` once `condition` holds for them; driven by a watch."""
        info = kinds.resolve(kind)
        end = time.monotonic() + timeout
        with self.api() as client:
            listed = client.list(info, namespace)
            objects = {_key(obj): obj for obj in listed.items}
            version = listed.resource_version
            while not condition(list(objects.values())):
                left = end - time.monotonic()
                if left <= 0:
                    state = json.dumps([_brief(obj) for obj in objects.values()], indent=1)
                    raise AssertionError(f"timed out waiting for {what}; last seen:\n{state}")
                for event in client.watch(
                    info, namespace, resource_version=version, timeout_seconds=math.ceil(left)
                ):
                    version = event.resource_version or version
                    if event.type == "DELETED":
                        objects.pop(_key(event.object), None)
                    else:
                        objects[_key(event.object)] = event.object
                    if condition(list(objects.values())):
                        break
            return list(objects.values())

    def leftovers(self) -> list[str]:
        """Everything of this cluster still on the host (empty after `down`)."""
        found = [f"netns {n}" for n in netns.names() if names.owns_netns(self.name, n)]
        etc = Path("/etc/netns")
        if etc.is_dir():
            found += [
                f"/etc/netns/{e.name}" for e in etc.iterdir() if names.owns_netns(self.name, e.name)
            ]
        processes = subprocess.run(
            ["pgrep", "-af", "--", self.name], capture_output=True, text=True, check=False
        )
        found += [f"process {line}" for line in processes.stdout.splitlines()]
        if self.paths.run_dir.exists():
            found.append(f"run dir {self.paths.run_dir}")
        return found


def unique_name(tag: str = "t") -> str:
    return f"{tag}{os.getpid() % 100000}-{secrets.token_hex(3)}"


@contextmanager
def local_cluster(root: Path, tag: str = "t") -> Iterator[LocalCluster]:
    """A cluster handle; whatever the test created is purged at the end, even on failure."""
    cluster = LocalCluster(unique_name(tag), root)
    try:
        yield cluster
    finally:
        cluster.down("--purge")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def pid_of(pod: dict[str, Any], container: int = 0) -> int:
    container_id = pod["status"]["containerStatuses"][container]["containerID"]
    assert container_id.startswith("process://"), container_id
    return int(container_id.removeprefix("process://"))


def process_exists(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _brief(obj: dict[str, Any]) -> dict[str, Any]:
    return {"name": _key(obj), "status": obj.get("status")}
