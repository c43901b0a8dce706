"""One pod's life on its node: sandbox, containers, probes, status, graceful deletion.

    admit (finalizer) -> sandbox (netns + address) -> init containers -> containers + probes
        -> finished (Succeeded/Failed: sandbox freed) or deleted (SIGTERM, grace, SIGKILL)
        -> sandbox freed -> finalizer removed (the API server then forgets the pod)

The kubelet's finalizer `ambientmesh.io/kubelet` is what makes deletion graceful: a deleted
pod only gets a deletionTimestamp until its processes are stopped and its address is free.
Status is recomputed (`podstatus`, pure) whenever a container or probe changes and written
by one writer task, so writes never interleave and bursts coalesce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput, MeshError
from ambientmesh.linux import netns
from ambientmesh.resources import kinds
from ambientmesh.runtime import podplan, podstatus
from ambientmesh.runtime.ipam import AddressPool
from ambientmesh.runtime.network import ClusterNetwork, NodeNetwork, PodNetwork
from ambientmesh.runtime.paths import ClusterPaths
from ambientmesh.runtime.podcontainers import PodContainers
from ambientmesh.runtime.podplan import DownwardFacts, PodPlan
from ambientmesh.runtime.processes import PodContext
from ambientmesh.runtime.writes import (
    add_finalizer,
    mutate,
    remove_finalizer,
    set_annotations,
    write_status,
)

log = logging.getLogger(__name__)

POD = kinds.lookup("v1", "Pod")
FINALIZER = "ambientmesh.io/kubelet"
NETNS_ANNOTATION = "ambientmesh.io/netns"
IGNORED_IMAGES_ANNOTATION = "ambientmesh.io/ignored-images"
STATUS_RETRY = 1.0


@dataclass(slots=True, kw_only=True)
class NodeContext:
    """What every pod worker of one node shares."""

    node: NodeNetwork
    network: ClusterNetwork
    pool: AddressPool
    client: AsyncApiClient
    paths: ClusterPaths
    clock: Clock
    backoff: Backoff
    mesh: MeshHooks | None = None
    warned: set[str] = field(default_factory=set)  # images already warned about


class MeshHooks:
    """What the kubelet tells the node's capture wiring (see `runtime.mesh`)."""

    def pod_running(self, pod: Mapping[str, Any], netns: str) -> None:
        raise NotImplementedError

    async def pod_stopped(self, uid: str) -> None:
        raise NotImplementedError


class PodWorker:
    def __init__(self, pod: dict[str, Any], context: NodeContext) -> None:
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.namespace = str(pod["metadata"].get("namespace") or "default")
        self.name = str(pod["metadata"]["name"])
        self._ctx = context
        self._deleting = asyncio.Event()
        self._shutdown = asyncio.Event()
        self._dirty = asyncio.Event()
        self._sandbox: PodNetwork | None = None
        self._plan: PodPlan | None = None
        self._containers: PodContainers | None = None
        self._started_at: datetime | None = None
        self._waiting_message = ""
        self._written: dict[str, Any] | None = None
        # Status writes are last-writer-wins on the server: never let two overlap, or a stale
        # one (computed before the pod finished) can land after the final one and stick.
        self._write_lock = asyncio.Lock()
        self._group: asyncio.TaskGroup | None = None
        self._grace_cap = float("inf")
        self.finished = False
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()

    # ---------------------------------------------------------------- inputs

    def observe(self, pod: dict[str, Any]) -> None:
        """A newer version of the pod from the informer."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._deleting.set()
            return
        if self._sandbox is None:
            return
        annotations = pod["metadata"].get("annotations") or {}
        if annotations.get(NETNS_ANNOTATION) != self._sandbox.netns and self._group is not None:
            # Someone replaced the annotations (a re-applied manifest): say again where it runs.
            self._group.create_task(self._annotate({NETNS_ANNOTATION: self._sandbox.netns}))
        if self._ctx.mesh is not None:
            self._ctx.mesh.pod_running(pod, self._sandbox.netns)

    def observe_deleted(self) -> None:
        """The pod is gone from the API (someone removed our finalizer): stop it all the same."""
        self._deleting.set()

    def shutdown(self, grace_cap: float) -> None:
        """The node is going away: stop containers within `grace_cap`, leave the API alone."""
        self._grace_cap = grace_cap
        self._shutdown.set()

    # ---------------------------------------------------------------- life

    async def run(self) -> None:
        try:
            if not self._deleting.is_set() and await self._admit():
                async with asyncio.TaskGroup() as group:
                    self._group = group
                    writer = group.create_task(self._status_writer())
                    await self._live()
                    await self._flush_status()
                    writer.cancel()
            await self._release()
            if self._deleting.is_set() and not self._shutdown.is_set():
                await self._forget()
        finally:
            self.finished = True

    async def _admit(self) -> bool:
        """Put the kubelet's finalizer on the pod; False if the pod is already gone."""
        updated = await mutate(
            self._ctx.client, POD, self.name, self.namespace,
            lambda obj: add_finalizer(obj, FINALIZER),
        )  # fmt: skip
        if updated is None or updated["metadata"].get("uid") != self.uid:
            return False
        self.pod = updated
        self._started_at = self._ctx.clock.now()
        self._written = dict(updated.get("status") or {})
        return True

    async def _live(self) -> None:
        """Run the pod until it finishes, or stop it when it is deleted or the node goes."""
        assert self._group is not None
        body = self._group.create_task(self._body())
        stop = self._group.create_task(self._stop_requested())
        await asyncio.wait((body, stop), return_when=asyncio.FIRST_COMPLETED)
        if not body.done():
            await self._stop_containers(
                min(self._plan.grace if self._plan else 0.0, self._grace_cap)
            )
            await body
        stop.cancel()

    async def _stop_requested(self) -> None:
        await _first(self._deleting.wait(), self._shutdown.wait())

    async def _body(self) -> None:
        if not await self._create_sandbox():
            return
        assert self._sandbox is not None
        assert self._plan is not None
        assert self._group is not None
        self._announce()
        if self._ctx.mesh is not None:
            self._ctx.mesh.pod_running(self.pod, self._sandbox.netns)
        self._containers = PodContainers(
            self._plan,
            self._pod_context(),
            log_path=lambda name: self._ctx.paths.container_log(
                self.namespace, self.name, self.uid, name
            ),
            backoff=self._ctx.backoff,
            clock=self._ctx.clock,
            group=self._group,
            on_change=self._dirty.set,
        )
        self._dirty.set()
        if not self._stopping():
            await self._containers.run()
        if self._containers.blocked:
            await self._deleting.wait()  # a container that cannot run keeps the pod as it is

    # ---------------------------------------------------------------- sandbox

    async def _create_sandbox(self) -> bool:
        """Create the pod's network namespace (retrying with back-off); False if told to stop."""
        node = self._ctx.node
        delay: float | None = None
        while not self._stopping():
            try:
                ip = node.ip if _host_network(self.pod) else self._ctx.pool.allocate(self.uid)
                facts = DownwardFacts(pod_ip=str(ip), host_ip=str(node.ip), node_name=node.name)
                self._plan = podplan.plan_pod(self.pod, facts)
            except InvalidInput as error:  # the pod itself is wrong: waiting will not help
                self._ctx.pool.release(self.uid)
                self._waiting_message = f"cannot run this pod: {error.message}"
                self._dirty.set()
                await self._deleting.wait()
                return False
            try:
                if not _host_network(self.pod):
                    planned = self._ctx.network.pod(node, self.namespace, self.name, ip)
                    if netns.exists(planned.netns):  # left by a worker that crashed
                        await self._ctx.network.remove_pod(planned)
                    self._sandbox = await self._ctx.network.add_pod(
                        node, self.namespace, self.name, ip
                    )
            except MeshError as error:
                self._ctx.pool.release(self.uid)
                self._waiting_message = f"cannot create the pod sandbox: {error.message}"
                log.warning("pod %s/%s: %s", self.namespace, self.name, self._waiting_message)
                self._dirty.set()
                delay = self._ctx.backoff.after(delay)
                await self._sleep_unless_stopped(delay)
                continue
            if self._sandbox is None:  # host network: the node's namespace and address
                self._sandbox = PodNetwork(
                    namespace=self.namespace, name=self.name, node=node.name,
                    node_netns=node.netns, netns=node.netns, ip=ip, node_link="",
                )  # fmt: skip
            self._waiting_message = ""
            self._dirty.set()
            return True
        return False

    async def _release(self) -> None:
        """Stop capture and free the namespace and address; safe when nothing was created."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is None:
            return
        if self._ctx.mesh is not None:
            await self._ctx.mesh.pod_stopped(self.uid)
        if sandbox.netns != self._ctx.node.netns:
            await self._ctx.network.remove_pod(sandbox)
        self._ctx.pool.release(self.uid)

    async def _forget(self) -> None:
        """Deletion is done: drop the logs and the finalizer; the API server removes the pod."""
        logs = self._ctx.paths.pod_log_dir(self.namespace, self.name, self.uid)
        shutil.rmtree(logs, ignore_errors=True)
        await mutate(
            self._ctx.client, POD, self.name, self.namespace,
            lambda obj: obj["metadata"].get("uid") == self.uid and remove_finalizer(obj, FINALIZER),
        )  # fmt: skip
        log.info("pod %s/%s deleted", self.namespace, self.name)

    def _announce(self) -> None:
        """Record where the pod runs (annotation) and say which images were not used."""
        assert self._sandbox is not None
        assert self._plan is not None
        images = self._plan.images
        for image in images:
            if image not in self._ctx.warned:
                self._ctx.warned.add(image)
                log.warning("image %s ignored: the local runtime runs the container's command "
                            "and args directly on this host", image)  # fmt: skip
        for container in (*self._plan.init_containers, *self._plan.containers):
            for ignored in container.ignored:
                log.warning("pod %s/%s container %s: %s is not supported and is ignored",
                            self.namespace, self.name, container.name, ignored)  # fmt: skip
        changes = {
            NETNS_ANNOTATION: self._sandbox.netns,
            IGNORED_IMAGES_ANNOTATION: ",".join(images) or None,
        }
        assert self._group is not None
        self._group.create_task(self._annotate(changes))

    async def _annotate(self, changes: Mapping[str, str | None]) -> None:
        try:
            await mutate(
                self._ctx.client, POD, self.name, self.namespace,
                lambda obj: obj["metadata"].get("uid") == self.uid
                and set_annotations(obj, changes),
            )  # fmt: skip
        except MeshError as error:
            log.warning("pod %s/%s: cannot annotate: %s", self.namespace, self.name, error.message)

    def _pod_context(self) -> PodContext:
        assert self._sandbox is not None
        assert self._plan is not None
        return PodContext(
            name=self.name,
            namespace=self.namespace,
            ip=self._sandbox.ip,
            node_name=self._ctx.node.name,
            netns=self._sandbox.netns,
            service_account=self._plan.service_account,
            platform_env=self._ctx.paths.environment(),
        )

    async def _stop_containers(self, grace: float) -> None:
        if self._containers is not None:
            await self._containers.stop(grace)

    # ---------------------------------------------------------------- status

    def _facts(self) -> podstatus.PodFacts:
        ip = self._sandbox.ip if self._sandbox is not None else None
        init, main = self._containers.facts() if self._containers else ([], _placeholders(self.pod))
        return podstatus.PodFacts(
            containers=main,
            init_containers=init,
            pod_ip=str(ip) if ip is not None else None,
            host_ip=str(self._ctx.node.ip),
            start_time=self._started_at,
            deleting=self._deleting.is_set(),
            waiting_message=self._waiting_message,
        )

    async def _status_writer(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._write_status()
            except MeshError as error:
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.name,
                            error.message)  # fmt: skip
                await self._ctx.clock.sleep(STATUS_RETRY)
                self._dirty.set()

    async def _write_status(self) -> None:
        async with self._write_lock:
            if self._shutdown.is_set():
                return
            status = podstatus.pod_status(
                self._facts(), previous=self._written, now=self._ctx.clock.now()
            )
            if status != self._written:
                await write_status(self._ctx.client, self.pod, status)
                self._written = status

    async def _flush_status(self) -> None:
        with contextlib.suppress(MeshError):
            await self._write_status()

    # ---------------------------------------------------------------- helpers

    def _stopping(self) -> bool:
        return self._deleting.is_set() or self._shutdown.is_set()

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        await _first(self._ctx.clock.sleep(seconds), self._stop_requested())


async def _first(*waits: Coroutine[Any, Any, object]) -> None:
    """Return as soon as one of `waits` finishes; the others are cancelled."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(wait) for wait in waits]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()


def _host_network(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def _placeholders(pod: Mapping[str, Any]) -> list[podstatus.ContainerFacts]:
    """Containers not created yet: all ContainerCreating."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return [
        podstatus.ContainerFacts(name=str(c.get("name", "")), image=str(c.get("image") or ""))
        for c in containers
        if isinstance(c, Mapping)
    ]
