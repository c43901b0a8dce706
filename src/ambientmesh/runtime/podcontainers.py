"""The containers of one pod: init containers in order, then the others together, with probes.

Each container runs under the pod's restart policy (`containers.Container`); init containers are
retried until they succeed unless the pod never restarts, as in Kubernetes. A readiness prober
starts with every run of a container and stops with it, so readiness never outlives a process.
A container whose configuration cannot run (`podplan`: no command, unsupported env source)
blocks the pod as Kubernetes' CreateContainerConfigError does: the others still run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock
from ambientmesh.runtime import podstatus
from ambientmesh.runtime.containers import Container, ContainerStatus, State
from ambientmesh.runtime.podplan import ContainerPlan, PodPlan
from ambientmesh.runtime.prober import ProbeResult, ProbeTarget, ReadinessProber
from ambientmesh.runtime.processes import PodContext, environment
from ambientmesh.runtime.restarts import RestartPolicy


@dataclass(slots=True)
class _Slot:
    """One container's live state."""

    plan: ContainerPlan
    status: ContainerStatus | None = None
    ready: bool = False
    done: bool = False
    last_termination: ContainerStatus | None = None
    container: Container | None = None
    prober: asyncio.Task[None] | None = None
    pid: int | None = None

    def facts(self) -> podstatus.ContainerFacts:
        return podstatus.ContainerFacts(
            name=self.plan.name,
            image=self.plan.image,
            status=self.status,
            ready=self.ready,
            done=self.done,
            last_termination=self.last_termination,
            config_error=self.plan.error,
        )


class PodContainers:
    def __init__(
        self,
        plan: PodPlan,
        pod: PodContext,
        *,
        log_path: Callable[[str], Path],
        backoff: Backoff,
        clock: Clock,
        group: asyncio.TaskGroup,
        on_change: Callable[[], None],
    ) -> None:
        self.plan = plan
        self.pod = pod
        self._log_path = log_path
        self._backoff = backoff
        self._clock = clock
        self._group = group  # probers run here, beside the containers
        self._on_change = on_change
        self.init = [_Slot(plan=container) for container in plan.init_containers]
        self.main = [_Slot(plan=container) for container in plan.containers]
        self._stopped = False

    @property
    def blocked(self) -> bool:
        """A container cannot run: the pod stays Pending (or not ready) until it is deleted."""
        return any(slot.plan.error for slot in (*self.init, *self.main))

    def facts(self) -> tuple[list[podstatus.ContainerFacts], list[podstatus.ContainerFacts]]:
        """(init containers, containers) for `podstatus`."""
        return [slot.facts() for slot in self.init], [slot.facts() for slot in self.main]

    async def run(self) -> None:
        """Return when every container is done for good, or they were stopped, or a container
        cannot run (then the runnable ones run on until `stop`)."""
        if not await self._run_init():
            return
        policy = self.plan.restart_policy
        async with asyncio.TaskGroup() as group:
            for slot in self.main:
                if slot.plan.spec is not None:
                    group.create_task(self._run(slot, policy))

    async def stop(self, grace: float) -> None:
        """SIGTERM every container, SIGKILL after `grace` (at most the pod's own grace)."""
        self._stopped = True
        grace = min(grace, self.plan.grace)
        containers = [s.container for s in (*self.init, *self.main) if s.container is not None]
        async with asyncio.TaskGroup() as group:
            for container in containers:
                group.create_task(container.stop(grace=grace))

    async def _run_init(self) -> bool:
        policy = RestartPolicy.NEVER
        if self.plan.restart_policy is not RestartPolicy.NEVER:
            policy = RestartPolicy.ON_FAILURE
        for slot in self.init:
            if slot.plan.spec is None:
                return False
            await self._run(slot, policy)
            if self._stopped or slot.status is None or slot.status.exit_code != 0:
                return False
        return True

    async def _run(self, slot: _Slot, policy: RestartPolicy) -> None:
        assert slot.plan.spec is not None
        slot.container = Container(
            slot.plan.spec,
            self.pod,
            log_path=self._log_path(slot.plan.name),
            restart_policy=policy,
            backoff=self._backoff,
            clock=self._clock,
            on_status=lambda status: self._changed(slot, status),
        )
        if self._stopped:
            return
        try:
            await slot.container.run()
        finally:
            slot.done = True
            slot.ready = False
            self._stop_prober(slot)
            self._on_change()

    def _changed(self, slot: _Slot, status: ContainerStatus) -> None:
        if status.state is State.TERMINATED:
            slot.last_termination = status
        slot.status = status
        if status.state is State.RUNNING and status.pid != slot.pid:
            slot.pid = status.pid
            self._start_prober(slot)
        elif status.state is not State.RUNNING:
            slot.pid = None
            slot.ready = False
            self._stop_prober(slot)
        self._on_change()

    def _start_prober(self, slot: _Slot) -> None:
        self._stop_prober(slot)
        probe = slot.plan.readiness
        if probe is None or slot.plan.spec is None:
            slot.ready = True  # no readiness probe: ready as soon as it runs
            return
        slot.ready = False
        env = environment(slot.plan.spec, self.pod)
        target = ProbeTarget(netns=self.pod.netns, ip=self.pod.ip, env=env)

        def changed(ready: bool, result: ProbeResult) -> None:
            slot.ready = ready
            self._on_change()

        prober = ReadinessProber(probe, target, clock=self._clock, on_change=changed)
        slot.prober = self._group.create_task(prober.run())

    def _stop_prober(self, slot: _Slot) -> None:
        if slot.prober is not None:
            slot.prober.cancel()
            slot.prober = None
