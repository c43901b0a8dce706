"""Watches over HTTP: every change in order, resumable from a resourceVersion, 410 when gone."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ambientmesh.errors import Gone
from ambientmesh.resources import kinds
from ambientmesh.store.types import WatchEvent
from tests.integration.apiserver.conftest import RunningServer
from tests.integration.apiserver.samples import sample

POD = kinds.lookup("v1", "Pod")


def pod(name: str, **labels: str) -> dict[str, Any]:
    obj = sample("Pod")
    obj["metadata"] = {"name": name, "labels": labels or {"app": "web"}}
    return obj


def take(events: Iterator[WatchEvent], count: int) -> list[tuple[str, str, str]]:
    return [
        (e.type, e.object["metadata"]["name"], e.resource_version)
        for e in itertools.islice(events, count)
    ]


def test_watch_sees_every_change_in_order_and_resumes(server: RunningServer) -> None:
    client = server.client()
    start = client.list(POD).resource_version
    expected = []
    for index in range(5):
        created = client.create(pod(f"p{index}"))
        expected.append(("ADDED", f"p{index}", created["metadata"]["resourceVersion"]))
    updated = client.update({**created, "metadata": {**created["metadata"], "labels": {"x": "y"}}})
    expected.append(("MODIFIED", "p4", updated["metadata"]["resourceVersion"]))
    deleted = client.delete(POD, "p0")
    expected.append(("DELETED", "p0", deleted["metadata"]["resourceVersion"]))

    first = take(client.watch(POD, resource_version=start), 3)
    assert first == expected[:3]
    # Reconnect from the last resourceVersion seen: the rest, nothing twice.
    rest = take(client.watch(POD, resource_version=first[-1][2]), 4)
    assert rest == expected[3:]


def test_watch_without_version_starts_with_current_objects(server: RunningServer) -> None:
    client = server.client()
    client.create(pod("a"))
    client.create(pod("b", app="other"))
    events = client.watch(POD, label_selector="app=web")
    assert take(events, 1)[0][:2] == ("ADDED", "a")
    client.create(pod("c"))
    assert take(events, 1)[0][:2] == ("ADDED", "c")


def test_live_watch_follows_concurrent_writes(server: RunningServer) -> None:
    client = server.client()
    start = client.list(POD).resource_version
    seen: list[tuple[str, str, str]] = []

    def watch() -> None:
        seen.extend(take(server.client().watch(POD, resource_version=start), 40))

    watcher = threading.Thread(target=watch)
    watcher.start()
    for index in range(40):
        client.create(pod(f"p{index}"))
    watcher.join(30)
    assert [name for _, name, _ in seen] == [f"p{index}" for index in range(40)]
    versions = [int(rv) for _, _, rv in seen]
    assert versions == sorted(versions)


def test_compacted_history_is_410(small_history_server: RunningServer) -> None:
    client = small_history_server.client()
    start = client.list(POD).resource_version
    for index in range(40):
        client.create(pod(f"p{index}"))
    with pytest.raises(Gone, match="too old resource version"):
        next(iter(client.watch(POD, resource_version=start)))
    raw = httpx.Client(transport=httpx.HTTPTransport(uds=str(small_history_server.options.socket)))
    with raw:
        response = raw.get(
            f"http://x/api/v1/namespaces/default/pods?watch=true&resourceVersion={start}"
        )
    assert response.status_code == 410
    assert response.json()["reason"] == "Expired"


def test_bookmarks_and_timeout(server: RunningServer) -> None:
    client = server.client()
    client.create(pod("a"))
    rv = client.list(POD).resource_version
    events = list(client.watch(POD, resource_version=rv, timeout_seconds=1, bookmarks=True))
    assert events, "expected bookmarks within the timeout"
    assert {event.type for event in events} == {"BOOKMARK"}
    assert events[-1].resource_version == rv


def test_watch_stream_is_newline_delimited_json(server: RunningServer) -> None:
    client = server.client()
    client.create(pod("a"))
    transport = httpx.HTTPTransport(uds=str(server.options.socket))
    with (
        httpx.Client(transport=transport, base_url="http://x") as raw,
        raw.stream("GET", "/api/v1/pods?watch=1&timeoutSeconds=1") as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [line for line in response.iter_lines() if line.strip()]
    first = json.loads(lines[0])
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["name"] == "a"


async def test_async_client_watch(server: RunningServer) -> None:
    async with server.async_client() as client:
        start = (await client.list(POD)).resource_version
        await client.create(pod("x"))
        await client.delete(POD, "x")
        async with client.watch(POD, resource_version=start) as events:
            seen = []
            async for event in events:
                seen.append((event.type, event.object["metadata"]["name"]))
                if len(seen) == 2:
                    break
    assert seen == [("ADDED", "x"), ("DELETED", "x")]
