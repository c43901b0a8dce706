"""The informer keeps a cache in step across dropped connections and expired history."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Change, Informer
from ambientmesh.resources import kinds
from ambientmesh.store.store import StoreConfig
from tests.integration.apiserver.conftest import options_for, serve

ACCOUNT = kinds.lookup("v1", "ServiceAccount")


class GateClock:
    """A clock whose ``sleep`` (the informer's back-off) waits until the test opens the gate."""

    def __init__(self) -> None:
        self.sleeping = asyncio.Event()
        self.gate = asyncio.Event()

    def monotonic(self) -> float:
        return 0.0

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await self.gate.wait()
        self.gate.clear()
        self.sleeping.clear()


def account(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}


class Harness:
    def __init__(self, directory: Path, retention: int) -> None:
        self.options = options_for(directory, store=StoreConfig(event_retention=retention))
        self.servers = contextlib.ExitStack()
        self.clock = GateClock()
        self.changes: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def start(self) -> None:
        self.servers.enter_context(serve(self.options))

    def stop(self) -> None:
        self.servers.close()

    def record(self, change: Change) -> None:
        self.changes.append((change.type, change.object["metadata"]["name"]))
        self.changed.set()

    async def wait_for(self, condition: Any, what: str) -> None:
        """Wait until ``condition()`` holds, re-checking after every change the informer reports."""
        async with asyncio.timeout(10):
            while not condition():
                self.changed.clear()
                await self.changed.wait()
        assert condition(), what


@pytest.fixture
async def harness(short_dir: Path) -> AsyncIterator[Harness]:
    harness = Harness(short_dir, retention=20)
    await asyncio.to_thread(harness.start)
    try:
        yield harness
    finally:
        await asyncio.to_thread(harness.stop)


async def test_informer_lists_watches_resumes_and_relists(harness: Harness) -> None:
    address = ServerAddress(socket=harness.options.socket)
    async with AsyncApiClient(address, timeout=5.0) as client:
        await client.create(account("before"))
        informer = Informer(client, ACCOUNT, namespace="default", clock=harness.clock)
        informer.add_handler(harness.record)
        async with asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(informer.run())
            await informer.wait_synced()
            assert harness.changes == [("ADDED", "before")]

            await client.create(account("live"))
            await harness.wait_for(lambda: informer.get("live") is not None, "live change seen")

            # Drop the connection: the server goes away; the informer backs off.
            await asyncio.to_thread(harness.stop)
            await harness.clock.sleeping.wait()
            await asyncio.to_thread(harness.start)
            harness.clock.gate.set()
            await client.create(account("after-restart"))
            await harness.wait_for(lambda: informer.get("after-restart") is not None, "resumed")
            assert informer.relists == 1, "resuming from a resourceVersion needs no relist"

            # Expire its history: more changes than the server keeps while it is away.
            await asyncio.to_thread(harness.stop)
            await harness.clock.sleeping.wait()
            await asyncio.to_thread(harness.start)
            await client.delete(ACCOUNT, "before")
            for index in range(30):
                await client.create(account(f"bulk-{index}"))
            harness.clock.gate.set()
            await harness.wait_for(lambda: informer.relists == 2, "relisted after Gone")
            runner.cancel()

    assert informer.get("before") is None
    assert ("DELETED", "before") in harness.changes
    expected = {"live", "after-restart"} | {f"bulk-{i}" for i in range(30)}
    assert {obj["metadata"]["name"] for obj in informer.items()} == expected
    assert informer.resource_version
