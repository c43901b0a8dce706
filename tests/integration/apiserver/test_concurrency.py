"""Optimistic concurrency under real concurrency: same resourceVersion, exactly one winner."""

from __future__ import annotations

import asyncio
import threading

from ambientmesh.errors import Conflict
from ambientmesh.resources import kinds
from tests.integration.apiserver.conftest import RunningServer
from tests.integration.apiserver.samples import sample

ACCOUNT = kinds.lookup("v1", "ServiceAccount")
PAIRS = 40


async def test_two_concurrent_updates_from_one_version_give_exactly_one_conflict(
    server: RunningServer,
) -> None:
    async with server.async_client() as client:
        objects = []
        for index in range(PAIRS):
            obj = sample("ServiceAccount")
            obj["metadata"]["name"] = f"sa-{index}"
            objects.append(await client.create(obj))

        async def update(obj: dict, writer: str) -> str:  # type: ignore[type-arg]
            labelled = {**obj, "metadata": {**obj["metadata"], "labels": {"writer": writer}}}
            try:
                await client.update(labelled)
            except Conflict:
                return "conflict"
            return writer

        # All 80 requests are in flight at once; the server groups them into transactions.
        outcomes = await asyncio.gather(
            *(update(obj, writer) for obj in objects for writer in ("left", "right"))
        )
        for index, obj in enumerate(objects):
            pair = outcomes[2 * index : 2 * index + 2]
            assert sorted(pair).count("conflict") == 1, pair
            winner = next(outcome for outcome in pair if outcome != "conflict")
            stored = await client.get(ACCOUNT, obj["metadata"]["name"])
            assert stored["metadata"]["labels"] == {"writer": winner}


def test_threads_racing_on_one_object(server: RunningServer) -> None:
    client = server.client()
    obj = sample("ServiceAccount")
    created = client.create(obj)
    barrier = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def race(writer: int) -> None:
        mine = server.client()
        labelled = {**created, "metadata": {**created["metadata"], "labels": {"w": str(writer)}}}
        barrier.wait(10)
        try:
            mine.update(labelled)
            outcome = "won"
        except Conflict:
            outcome = "conflict"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["conflict"] * 7 + ["won"]
