"""The Deployment and Job controllers as async loops: informer events in, API writes out.

Each reconcile reads the owner and its pods fresh from the API (a list is cheap on a local
socket), so a decision never rests on a cache that has not yet seen the controller's own
previous writes; the pure `decide` functions say what to do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Change
from ambientmesh.clock import Clock
from ambientmesh.errors import NotFound
from ambientmesh.resources import kinds
from ambientmesh.resources.selectors import from_label_selector
from ambientmesh.runtime.controllers import deployment as deployments
from ambientmesh.runtime.controllers import job as jobs
from ambientmesh.runtime.controllers.pods import controller_of, controller_uid, summarize
from ambientmesh.runtime.podstatus import rfc3339
from ambientmesh.runtime.workqueue import WorkQueue
from ambientmesh.runtime.writes import write_status

log = logging.getLogger(__name__)

POD = kinds.lookup("v1", "Pod")
DEPLOYMENT = kinds.lookup("apps/v1", "Deployment")
JOB = kinds.lookup("batch/v1", "Job")
Key = tuple[str, str]


class _OwnerController:
    """What both controllers share: a queue keyed by owner, fed by owner and pod events."""

    kind_name = ""

    def __init__(self, client: AsyncApiClient, *, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self.queue: WorkQueue[Key] = WorkQueue(self.kind_name.lower(), clock=clock)

    def on_owner(self, change: Change) -> None:
        self.queue.add(_key(change.object))

    def on_pod(self, change: Change) -> None:
        owner = controller_of(change.object)
        if owner is not None and owner[0] == self.kind_name:
            self.queue.add((_key(change.object)[0], owner[1]))

    async def run(self) -> None:
        await self.queue.run(self._reconcile)

    async def _reconcile(self, key: Key) -> None:
        raise NotImplementedError

    async def _owned_pods(self, owner: Mapping[str, Any], selector: str) -> list[dict[str, Any]]:
        namespace = owner["metadata"]["namespace"]
        listed = await self._client.list(POD, namespace, label_selector=selector or None)
        uid = owner["metadata"]["uid"]
        return [pod for pod in listed.items if controller_uid(pod) == uid]

    async def _apply(
        self,
        owner: Mapping[str, Any],
        *,
        create: int,
        pod: Mapping[str, Any],
        delete: tuple[str, ...],
    ) -> None:
        namespace = owner["metadata"]["namespace"]
        for name in delete:
            with contextlib.suppress(NotFound):
                await self._client.delete(POD, name, namespace)
        for _ in range(create):
            made = await self._client.create(pod)
            log.info("%s %s/%s: created pod %s", self.kind_name, namespace,
                     owner["metadata"]["name"], made["metadata"]["name"])  # fmt: skip

    async def _write_status(self, owner: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        if dict(status) != (owner.get("status") or {}):
            await write_status(self._client, owner, status)


class DeploymentController(_OwnerController):
    kind_name = "Deployment"

    async def _reconcile(self, key: Key) -> None:
        namespace, name = key
        try:
            deployment = await self._client.get(DEPLOYMENT, name, namespace)
        except NotFound:
            return  # its pods are garbage-collected by the store
        if deployment["metadata"].get("deletionTimestamp"):
            return
        selector = from_label_selector((deployment.get("spec") or {}).get("selector"))
        pods = await self._owned_pods(deployment, str(selector))
        plan = deployments.decide(
            deployment, [summarize(pod) for pod in pods], now=rfc3339(self._clock.now())
        )
        await self._apply(deployment, create=plan.create, pod=plan.pod, delete=plan.delete)
        await self._write_status(deployment, plan.status)


class JobController(_OwnerController):
    kind_name = "Job"

    def __init__(self, client: AsyncApiClient, *, clock: Clock, backoff: float = 10.0) -> None:
        super().__init__(client, clock=clock)
        self._backoff = backoff

    async def _reconcile(self, key: Key) -> None:
        namespace, name = key
        try:
            job = await self._client.get(JOB, name, namespace)
        except NotFound:
            return
        if job["metadata"].get("deletionTimestamp"):
            return
        selector = f"{jobs.CONTROLLER_UID_LABELS[0]}={job['metadata']['uid']}"
        pods = await self._owned_pods(job, selector)
        plan = jobs.decide(
            job, [summarize(pod) for pod in pods], now=self._clock.now(), backoff=self._backoff
        )
        await self._apply(job, create=plan.create, pod=plan.pod, delete=plan.delete)
        await self._write_status(job, plan.status)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)


def _key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")
