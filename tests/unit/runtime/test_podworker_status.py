"""The pod worker's status writes never overlap, so the final status is the one that stays."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address
from types import SimpleNamespace
from typing import Any, cast

from ambientmesh.runtime.podstatus import pod_status
from ambientmesh.runtime.podworker import NodeContext, PodWorker
from ambientmesh.testing.clock import FakeClock

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "job-1", "namespace": "jobs", "uid": "u-1"},
    "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"]}]},
}


class SlowStatusClient:
    """Holds the first status write until released; the store keeps whatever lands last."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] | None = None
        self.release_first = asyncio.Event()
        self.writes = 0

    async def update_status(self, body: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        if self.writes == 1:
            await self.release_first.wait()
        self.stored = body["status"]
        return body


async def test_a_write_in_flight_cannot_overwrite_the_final_status() -> None:
    client = SlowStatusClient()
    context = NodeContext(
        node=cast(Any, SimpleNamespace(ip=IPv4Address("10.244.1.1"), name="node-1")),
        network=cast(Any, None),
        pool=cast(Any, None),
        client=cast(Any, client),
        paths=cast(Any, None),
        clock=FakeClock(),
        backoff=cast(Any, None),
    )
    worker = PodWorker(dict(POD), context)
    async with asyncio.TaskGroup() as tasks:
        first = tasks.create_task(worker._write_status())  # computed while the pod is Pending
        await asyncio.sleep(0)
        worker._waiting_message = "the pod moved on"  # the facts change before it lands
        final = tasks.create_task(worker._write_status())
        await asyncio.sleep(0)
        client.release_first.set()
        await first
        await final
    assert client.stored is not None
    now_true = pod_status(worker._facts(), previous=client.stored, now=context.clock.now())
    assert client.stored == now_true  # what stays is what the facts say now, not the stale write
