"""Container processes: started inside a pod's network namespace, logged to a file, stopped gently.

A container runs exactly as `ip netns exec <pod-netns> <command>` would run it, because that
is how it is started: iproute2 enters the namespace, gives the process a private mount
namespace with `/etc/netns/<pod-netns>/*` (resolv.conf) bound over `/etc`, then execs the
command in place, so the process we track is the container's own. Measured at about 2.5 ms
per start, which is small beside any program's own start-up; re-creating iproute2's mount
set-up by hand in a pre-exec hook would save little and be unsafe in a threaded process.

Each container gets its own session and process group, so stopping it (SIGTERM, then SIGKILL
after the grace period) reaches every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import BinaryIO

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import InvalidInput, MeshError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_GRACE = 30.0  # Kubernetes' terminationGracePeriodSeconds


class ContainerStartError(MeshError):
    """A container could not be started (no such executable, no such working directory...)."""

    status = 500
    reason = "RunContainerError"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodContext:
    """The pod a container belongs to: where it runs and what its environment says."""

    name: str
    namespace: str
    ip: IPv4Address
    node_name: str
    netns: str
    service_account: str = "default"
    # Set by the platform in every container, as kubelet sets KUBERNETES_SERVICE_HOST, so
    # that mesh components running as pods (waypoints) find their cluster.
    platform_env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSpec:
    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None

    @classmethod
    def from_kubernetes(
        cls,
        *,
        name: str,
        command: Sequence[str] = (),
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        working_dir: str | None = None,
    ) -> ContainerSpec:
        """Kubernetes' `command` + `args`; with no image there is no entrypoint to fall back on."""
        argv = (*command, *args)
        if not argv:
            raise InvalidInput(
                f"container {name!r} has neither command nor args; "
                "the local runtime ignores images, so it needs something to run"
            )
        return cls(name=name, argv=argv, env=tuple((env or {}).items()), working_dir=working_dir)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitStatus:
    """How a process ended; `code` follows the shell's convention (128 + signal) like Kubernetes."""

    code: int
    signal: int | None = None

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitStatus:
        if returncode < 0:
            return cls(code=128 - returncode, signal=-returncode)
        return cls(code=returncode)


def environment(spec: ContainerSpec, pod: PodContext) -> dict[str, str]:
    """The container's environment: a clean base, the pod's facts, then the spec's own env."""
    interpreter_bin = os.path.dirname(sys.executable)  # so `python` means ambientmesh's Python
    env = {
        "PATH": f"{interpreter_bin}:{DEFAULT_PATH}",
        "HOME": os.environ.get("HOME", "/root"),
        "HOSTNAME": pod.name,
        "POD_NAME": pod.name,
        "POD_NAMESPACE": pod.namespace,
        "POD_IP": str(pod.ip),
        "NODE_NAME": pod.node_name,
        "SERVICE_ACCOUNT": pod.service_account,
        **dict(pod.platform_env),
    }
    env.update(spec.env)
    return env


def previous_log(log_path: Path) -> Path:
    """Where the log of the run before the current one is kept (`logs --previous`)."""
    return log_path.with_name(f"{log_path.stem}.previous{log_path.suffix}")


async def start(spec: ContainerSpec, pod: PodContext, *, log_path: Path) -> ContainerProcess:
    """Start the container's process in the pod's namespace; stdout and stderr go to `log_path`.

    An earlier log at `log_path` is moved to `previous_log(log_path)` first.
    """
    env = environment(spec, pod)
    executable = _resolve(spec, env["PATH"])
    cwd = spec.working_dir or "/"
    ip_tool = shutil.which("ip")
    if ip_tool is None:
        raise ContainerStartError("the `ip` command (iproute2) is not installed")
    with _open_log(spec, cwd, log_path) as log:
        try:
            process = await asyncio.create_subprocess_exec(
                ip_tool, "netns", "exec", pod.netns, executable, *spec.argv[1:],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ContainerStartError(f"container {spec.name!r}: cannot start: {exc}") from exc
    return ContainerProcess(process)


def _open_log(spec: ContainerSpec, cwd: str, log_path: Path) -> BinaryIO:
    # Local file system work only: quick, and done before anything starts.
    if not os.path.isdir(cwd):
        raise ContainerStartError(
            f"container {spec.name!r}: working directory {cwd!r} does not exist"
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if log_path.exists():
        log_path.replace(previous_log(log_path))
    return open(log_path, "ab")  # the caller closes it once the child holds it


def _resolve(spec: ContainerSpec, path: str) -> str:
    program = spec.argv[0]
    found = shutil.which(program, path=path) if "/" not in program else program
    if found is None or not os.access(found, os.X_OK) or os.path.isdir(found):
        raise ContainerStartError(
            f"container {spec.name!r}: executable {program!r} not found in $PATH ({path})"
        )
    return found


class ContainerProcess:
    """A running container process and its process group."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid

    @property
    def exit_status(self) -> ExitStatus | None:
        code = self._process.returncode
        return None if code is None else ExitStatus.from_returncode(code)

    async def wait(self) -> ExitStatus:
        return ExitStatus.from_returncode(await self._process.wait())

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal every process of the container; quiet if they are gone."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, *, grace: float = DEFAULT_GRACE, clock: Clock | None = None) -> ExitStatus:
        """SIGTERM the group; SIGKILL it if the main process outlives `grace` seconds."""
        if self._process.returncode is None:
            self.kill_group(signal.SIGTERM)
            if not await self._exits_within(grace, clock or SystemClock()):
                self.kill_group(signal.SIGKILL)
        status = await self.wait()
        self.kill_group(signal.SIGKILL)  # children the main process left behind
        return status

    async def _exits_within(self, seconds: float, clock: Clock) -> bool:
        async with asyncio.TaskGroup() as group:
            exited = group.create_task(self._process.wait())
            timer = group.create_task(clock.sleep(seconds))
            await asyncio.wait((exited, timer), return_when=asyncio.FIRST_COMPLETED)
            exited_first = exited.done()
            exited.cancel()
            timer.cancel()
        return exited_first
