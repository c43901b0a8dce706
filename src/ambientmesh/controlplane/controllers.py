"""Waypoint lifecycle and status write-back, driven by informers through one keyed work queue.

- A Gateway of class ``istio-waypoint`` gets its ServiceAccount, Deployment and Service
  (server-side apply; they are owned by the Gateway, so the store garbage-collects them when
  it goes). It becomes ``Programmed`` with ``status.addresses`` once one of its pods is
  ready, and loses both when none is.
- Services that ask for a waypoint get condition ``istio.io/WaypointBound``.
- AuthorizationPolicies get condition ``ZtunnelAccepted`` saying what ztunnel enforces.
- The ``istio-waypoint`` GatewayClass is created if missing.

Work items are deduplicated while queued; a failed item is retried after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Change, Informer
from ambientmesh.clock import Clock
from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient.index import AmbientIndex, Changes
from ambientmesh.controlplane.status import (
    conditions_with,
    gateway_status,
    policy_condition,
    waypoint_condition,
)
from ambientmesh.controlplane.waypoint_objects import WaypointSettings, gateway_class, render
from ambientmesh.errors import MeshError, NotFound
from ambientmesh.resources import kinds

log = logging.getLogger(__name__)

Item = tuple[str, tuple[str, str]]  # (what, (namespace, name))


class Controllers:
    def __init__(
        self,
        client: AsyncApiClient,
        index: AmbientIndex,
        informers: Mapping[str, Informer],
        *,
        clock: Clock,
        waypoint: WaypointSettings | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        self._client = client
        self._index = index
        self._informers = informers
        self._clock = clock
        self._waypoint = waypoint or WaypointSettings()
        self._retry_delay = retry_delay
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._queued: set[Item] = set()

    # ------------------------------------------------------------------ inputs

    def enqueue(self, item: Item) -> None:
        if item not in self._queued:
            self._queued.add(item)
            self._queue.put_nowait(item)

    def on_gateway(self, change: Change) -> None:
        self.enqueue(("gateway", _key(change.object)))

    def on_pod(self, change: Change) -> None:
        labels = (change.object.get("metadata") or {}).get("labels") or {}
        gateway = labels.get(L.GATEWAY_NAME_LABEL)
        if gateway:
            self.enqueue(("gateway", (_key(change.object)[0], gateway)))

    def on_status(self, changes: Changes) -> None:
        for key in changes.service_bindings:
            self.enqueue(("service", key))
        for key in changes.policy_conversions:
            self.enqueue(("policy", key))

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        await self._ensure_gateway_class()
        while True:
            item = await self._queue.get()
            self._queued.discard(item)
            try:
                await self._reconcile(item)
            except MeshError as error:
                log.warning(
                    "reconciling %s %s/%s failed: %s; retrying", item[0], *item[1], error.message
                )
                await self._clock.sleep(self._retry_delay)
                self.enqueue(item)

    async def _ensure_gateway_class(self) -> None:
        try:
            await self._client.get(
                kinds.lookup("gateway.networking.k8s.io/v1", "GatewayClass"), L.WAYPOINT_CLASS
            )
        except NotFound:
            await self._client.apply([gateway_class()])
            log.info("created GatewayClass %s", L.WAYPOINT_CLASS)

    async def _reconcile(self, item: Item) -> None:
        what, key = item
        if what == "gateway":
            await self._reconcile_gateway(key)
        elif what == "service":
            binding = self._index.bindings.get(key)
            await self._write_condition("Service", key, waypoint_condition(binding))
        elif what == "policy":
            conversion = self._index.conversions.get(key)
            await self._write_condition("AuthorizationPolicy", key, policy_condition(conversion))

    async def _reconcile_gateway(self, key: tuple[str, str]) -> None:
        gateway = self._cached("Gateway", key)
        if (
            gateway is None
            or (gateway.get("spec") or {}).get("gatewayClassName") != L.WAYPOINT_CLASS
        ):
            return
        await self._client.apply(render(gateway, self._waypoint))
        ready_pods = [
            pod
            for pod in self._informers["Pod"].items()
            if _key(pod)[0] == key[0]
            and ((pod.get("metadata") or {}).get("labels") or {}).get(L.GATEWAY_NAME_LABEL)
            == key[1]
            and _ready(pod)
        ]
        status = gateway_status(
            gateway,
            ready=bool(ready_pods),
            hostname=self._index.config.service_hostname(key[0], key[1]),
            now=self._clock.now(),
        )
        if status != gateway.get("status"):
            await self._client.update_status({**gateway, "status": status})

    async def _write_condition(
        self, kind: str, key: tuple[str, str], condition: dict[str, Any] | None
    ) -> None:
        obj = self._cached(kind, key)
        if obj is None:
            return
        status = dict(obj.get("status") or {})
        conditions = conditions_with(
            status.get("conditions") or [],
            condition,
            now=self._clock.now(),
            generation=(obj.get("metadata") or {}).get("generation"),
        )
        if conditions == (status.get("conditions") or []):
            return
        status["conditions"] = conditions
        await self._client.update_status({**obj, "status": status})

    def _cached(self, kind: str, key: tuple[str, str]) -> dict[str, Any] | None:
        informer = self._informers.get(kind)
        return informer.cache.get(key) if informer is not None else None


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
