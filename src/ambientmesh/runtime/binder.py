"""The scheduler as a loop: binds each unscheduled pod to the node `scheduler.schedule` picks.

Binding writes `spec.nodeName` with the pod's resourceVersion, so a pod that changed meanwhile
is looked at again rather than bound on stale facts. A pod that fits nowhere gets condition
PodScheduled=False (reason Unschedulable) and is retried whenever a node changes. Until the
informer shows a binding, the pod is "assumed" on its node so the next decision counts it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Change, Informer
from ambientmesh.clock import Clock
from ambientmesh.errors import NotFound
from ambientmesh.resources.views import Node
from ambientmesh.runtime import scheduler
from ambientmesh.runtime.controllers.pods import controller_uid, with_times
from ambientmesh.runtime.podstatus import TERMINAL_PHASES, rfc3339
from ambientmesh.runtime.workqueue import WorkQueue
from ambientmesh.runtime.writes import write_status

log = logging.getLogger(__name__)

Key = tuple[str, str]


class Binder:
    def __init__(
        self, client: AsyncApiClient, *, pods: Informer, nodes: Informer, clock: Clock
    ) -> None:
        self._client = client
        self._pods = pods
        self._nodes = nodes
        self._clock = clock
        self._assumed: dict[str, str] = {}  # pod uid -> node, until the informer shows it
        self.queue: WorkQueue[Key] = WorkQueue("scheduler", clock=clock)

    def on_pod(self, change: Change) -> None:
        pod = change.object
        uid = str(pod["metadata"].get("uid"))
        if change.type == "DELETED" or _bound(pod):
            self._assumed.pop(uid, None)
        elif _wants_node(pod):
            self.queue.add(_key(pod))

    def on_node(self, change: Change) -> None:
        for pod in self._pods.items():
            if _wants_node(pod):
                self.queue.add(_key(pod))

    async def run(self) -> None:
        await self.queue.run(self._reconcile)

    async def _reconcile(self, key: Key) -> None:
        pod = self._pods.get(key[1], key[0])
        if pod is None or not _wants_node(pod) or pod["metadata"].get("uid") in self._assumed:
            return
        decision = scheduler.schedule(
            scheduler.PodFacts(
                node_selector=(pod.get("spec") or {}).get("nodeSelector") or {},
                owner_uid=controller_uid(pod),
            ),
            [_node_facts(node) for node in self._nodes.items()],
            self._placements(),
        )
        if isinstance(decision, scheduler.Bound):
            await self._bind(pod, decision.node)
        else:
            await self._mark_unschedulable(pod, decision)

    def _placements(self) -> list[scheduler.Placement]:
        placed = []
        for pod in self._pods.items():
            node = (pod.get("spec") or {}).get("nodeName") or self._assumed.get(
                str(pod["metadata"].get("uid"))
            )
            if node and not _finished(pod):
                placed.append(scheduler.Placement(node=node, owner_uid=controller_uid(pod)))
        return placed

    async def _bind(self, pod: Mapping[str, Any], node: str) -> None:
        bound = copy.deepcopy(dict(pod))
        bound["spec"]["nodeName"] = node
        try:
            await self._client.update(bound)  # Conflict: the queue retries with fresh facts
        except NotFound:
            return
        self._assumed[str(pod["metadata"]["uid"])] = node
        log.info("scheduled pod %s/%s on %s", *_key(pod), node)

    async def _mark_unschedulable(
        self, pod: Mapping[str, Any], decision: scheduler.Unschedulable
    ) -> None:
        status = dict(pod.get("status") or {})
        wanted = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": decision.reason,
                "message": decision.message,
            }
        ]
        conditions = with_times(
            wanted,
            status.get("conditions"),
            rfc3339(self._clock.now()),
            probe_field="lastProbeTime",
        )
        if conditions != status.get("conditions"):
            log.info("pod %s/%s is unschedulable: %s", *_key(pod), decision.message)
            await write_status(self._client, pod, {**status, "conditions": conditions})


def _node_facts(node: Mapping[str, Any]) -> scheduler.NodeFacts:
    view = Node.from_obj(node)
    return scheduler.NodeFacts(
        name=view.name, labels=dict(view.labels), ready=view.ready, unschedulable=view.unschedulable
    )


def _bound(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _finished(pod: Mapping[str, Any]) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) or (
        (pod.get("status") or {}).get("phase") in TERMINAL_PHASES
    )


def _wants_node(pod: Mapping[str, Any]) -> bool:
    return not _bound(pod) and not _finished(pod)


def _key(pod: Mapping[str, Any]) -> Key:
    metadata = pod.get("metadata") or {}
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")
