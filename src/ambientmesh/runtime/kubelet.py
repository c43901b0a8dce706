"""The kubelet of one node: a pod worker for every pod bound to the node, for as long as needed.

It keeps finished workers until the API server reports the pod DELETED, so a late event that
still shows an old phase can never start a finished pod again. A worker that fails unexpectedly
is logged and replaced after a pause, as a crashed kubelet would pick the pod up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from ambientmesh.apiserver.informer import Change
from ambientmesh.runtime.podstatus import TERMINAL_PHASES
from ambientmesh.runtime.podworker import FINALIZER, NodeContext, PodWorker

log = logging.getLogger(__name__)

RESTART_DELAY = 5.0
SHUTDOWN_DEADLINE = 60.0


class Kubelet:
    def __init__(self, context: NodeContext, *, shutdown_grace: float = 5.0) -> None:
        self.context = context
        self.node = context.node.name
        self._shutdown_grace = shutdown_grace
        self._workers: dict[str, PodWorker] = {}
        self._deleted: set[str] = set()
        self._inbox: asyncio.Queue[PodWorker] = asyncio.Queue()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    @property
    def workers(self) -> Mapping[str, PodWorker]:
        return self._workers

    def on_pod(self, change: Change) -> None:
        """An informer change of a pod bound to this node."""
        pod = change.object
        uid = str(pod["metadata"].get("uid"))
        worker = self._workers.get(uid)
        if change.type == "DELETED":
            self._deleted.add(uid)
            if worker is None or worker.finished:
                self._forget(uid)
            else:
                worker.observe_deleted()
            return
        if worker is not None and not (worker.finished and _deleting(pod)):
            worker.observe(pod)
        elif _needs_worker(pod) and not self._closing:
            self._start(PodWorker(pod, self.context))

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                worker = await self._inbox.get()
                self._tasks[worker.uid] = group.create_task(self._supervise(worker))

    async def shutdown(self) -> None:
        """Stop every pod's processes (each within min(its grace, the cap)) and free its network."""
        self._closing = True
        for worker in self._workers.values():
            worker.shutdown(self._shutdown_grace)
        pending = [task for task in self._tasks.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_DEADLINE)

    def _start(self, worker: PodWorker) -> None:
        self._workers[worker.uid] = worker
        self._inbox.put_nowait(worker)

    async def _supervise(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        except Exception:
            log.exception("node %s: pod %s/%s failed", self.node, worker.namespace, worker.name)
            await self.context.clock.sleep(RESTART_DELAY)
            if worker.uid not in self._deleted and not self._closing:
                self._start(PodWorker(worker.pod, self.context))
                return
        if worker.uid in self._deleted:
            self._forget(worker.uid)

    def _forget(self, uid: str) -> None:
        self._workers.pop(uid, None)
        self._tasks.pop(uid, None)
        self._deleted.discard(uid)


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _needs_worker(pod: Mapping[str, Any]) -> bool:
    """Run it unless it finished earlier; a deleted pod still needs our finalizer removed."""
    if _deleting(pod):
        return FINALIZER in (pod["metadata"].get("finalizers") or [])
    return (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
