"""One container's life under its pod's restart policy: start, watch, back off, restart, stop.

Status follows Kubernetes' shape: Waiting (with a reason such as CrashLoopBackOff and the
delay), Running, or Terminated (with the exit code); `restart_count` counts restarts.

If the supervisor process dies, containers keep running (they have their own sessions) but
nobody restarts or reaps them; a new supervisor does not adopt them. `ClusterNetwork.teardown`
kills whatever is still inside the cluster's namespaces.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock, SystemClock
from ambientmesh.runtime import processes
from ambientmesh.runtime.processes import (
    ContainerProcess,
    ContainerSpec,
    ContainerStartError,
    ExitStatus,
    PodContext,
)
from ambientmesh.runtime.restarts import (
    KUBELET_BACKOFF,
    RestartPolicy,
    restart_delay,
    should_restart,
)

START_ERROR_CODE = 128  # what a container that never started "exited" with


class State(StrEnum):
    WAITING = "Waiting"
    RUNNING = "Running"
    TERMINATED = "Terminated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStatus:
    name: str
    state: State
    reason: str = ""  # ContainerCreating, CrashLoopBackOff, Completed, Error, StartError...
    message: str = ""
    restart_count: int = 0
    pid: int | None = None
    exit_code: int | None = None  # of the last run, once there was one
    restart_delay: float | None = None  # while waiting to restart
    started_at: datetime | None = None
    finished_at: datetime | None = None


StatusListener = Callable[[ContainerStatus], None]


class Container:
    """Runs one container until its restart policy says it is done, or `stop` is called."""

    def __init__(
        self,
        spec: ContainerSpec,
        pod: PodContext,
        *,
        log_path: Path,
        restart_policy: RestartPolicy = RestartPolicy.ALWAYS,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
        on_status: StatusListener | None = None,
    ) -> None:
        self.spec = spec
        self.pod = pod
        self.log_path = log_path
        self.restart_policy = restart_policy
        self.backoff = backoff or KUBELET_BACKOFF
        self.clock = clock or SystemClock()
        self._on_status = on_status
        self._status = ContainerStatus(
            name=spec.name, state=State.WAITING, reason="ContainerCreating"
        )
        self._watchers: list[tuple[Callable[[ContainerStatus], bool], asyncio.Future[None]]] = []
        self._process: ContainerProcess | None = None
        self._stopping = asyncio.Event()
        self._stop_grace = processes.DEFAULT_GRACE

    @property
    def status(self) -> ContainerStatus:
        return self._status

    async def run(self) -> ContainerStatus:
        """Run, restarting as the policy says; return the final (Terminated) status.

        Cancelling `run` kills the container at once; call `stop` for a graceful end.
        """
        delay: float | None = None
        try:
            while True:
                exit_status, ran_for = await self._run_once()
                if self._stopping.is_set() or not should_restart(
                    self.restart_policy, exit_status.code
                ):
                    return self._status
                delay = restart_delay(self.backoff, delay, ran_for)
                self._publish(
                    state=State.WAITING, reason="CrashLoopBackOff", restart_delay=delay, pid=None
                )
                if await self._stopped_within(delay):
                    return self._publish(state=State.TERMINATED, restart_delay=None)
                self._publish(restart_count=self._status.restart_count + 1, restart_delay=None)
        finally:
            if self._process is not None and self._process.exit_status is None:
                self._process.kill_group()

    async def stop(self, *, grace: float = processes.DEFAULT_GRACE) -> None:
        """Stop for good: SIGTERM, SIGKILL after `grace`, and no more restarts."""
        self._stop_grace = grace
        self._stopping.set()
        if self._process is not None:
            await self._process.stop(grace=grace, clock=self.clock)

    async def wait_for(self, predicate: Callable[[ContainerStatus], bool]) -> ContainerStatus:
        """Return as soon as the status satisfies `predicate` (put a deadline around this)."""
        if predicate(self._status):
            return self._status
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._watchers.append(entry)
        try:
            await future
        finally:
            if entry in self._watchers:
                self._watchers.remove(entry)
        return self._status

    async def _run_once(self) -> tuple[ExitStatus, float]:
        if self._stopping.is_set():
            self._publish(state=State.TERMINATED, reason="Stopped")
            return ExitStatus(code=0), 0.0
        try:
            self._process = await processes.start(self.spec, self.pod, log_path=self.log_path)
        except ContainerStartError as exc:
            self._publish(
                state=State.TERMINATED, reason="StartError", message=exc.message,
                exit_code=START_ERROR_CODE, finished_at=self.clock.now(),
            )  # fmt: skip
            return ExitStatus(code=START_ERROR_CODE), 0.0
        began = self.clock.monotonic()
        self._publish(
            state=State.RUNNING, reason="", message="", pid=self._process.pid,
            started_at=self.clock.now(), finished_at=None,
        )  # fmt: skip
        if self._stopping.is_set():
            # `stop` came while the process was being started, too early to reach it.
            await self._process.stop(grace=self._stop_grace, clock=self.clock)
        exit_status = await self._process.wait()
        self._publish(
            state=State.TERMINATED,
            reason="Completed" if exit_status.code == 0 else "Error",
            exit_code=exit_status.code,
            finished_at=self.clock.now(),
        )
        return exit_status, self.clock.monotonic() - began

    async def _stopped_within(self, seconds: float) -> bool:
        async with asyncio.TaskGroup() as group:
            stopped = group.create_task(self._stopping.wait())
            timer = group.create_task(self.clock.sleep(seconds))
            await asyncio.wait((stopped, timer), return_when=asyncio.FIRST_COMPLETED)
            was_stopped = stopped.done()
            stopped.cancel()
            timer.cancel()
        return was_stopped

    def _publish(self, **changes: object) -> ContainerStatus:
        self._status = dataclasses.replace(self._status, **changes)  # type: ignore[arg-type]
        if self._on_status is not None:
            self._on_status(self._status)
        for predicate, future in list(self._watchers):
            if not future.done() and predicate(self._status):
                future.set_result(None)
        return self._status
