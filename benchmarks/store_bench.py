"""Resource store and API server: write throughput, list and watch latency, size on disk.

    .venv/bin/python benchmarks/store_bench.py [--pods 10000] [--services 1000]

Starts its own API server (``python -m ambientmesh.apiserver``, a separate process, as in a
real cluster) on a temporary directory and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.resources import kinds

POD = kinds.lookup("v1", "Pod")
NAMESPACES = 10


def pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{index}",
            "namespace": f"ns-{index % NAMESPACES}",
            "labels": {"app": f"app-{index % 100}", "tier": "backend"},
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example/app:1.0",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": "MODE", "value": "production"}],
                }
            ],
            "nodeName": f"node-{index % 3}",
        },
    }


def service(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{index}", "namespace": f"ns-{index % NAMESPACES}"},
        "spec": {
            "selector": {"app": f"app-{index % 100}"},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        },
    }


def namespaces() -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}}
        for n in range(NAMESPACES)
    ]


def start_server(directory: Path, ready: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ambientmesh.apiserver",
            "--state-dir",
            str(directory / "state"),
            "--socket",
            str(directory / "api.sock"),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
    )


@asynccontextmanager
async def server(directory: Path) -> AsyncIterator[AsyncApiClient]:
    ready = directory / "ready.json"
    process = start_server(directory, ready)
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise SystemExit("the API server failed to start")
            await asyncio.sleep(0.05)
        async with AsyncApiClient(ServerAddress(socket=directory / "api.sock")) as client:
            yield client
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


async def bounded(count: int, concurrency: int, job: Callable[[int], Awaitable[Any]]) -> None:
    """Run ``job(i)`` for every i with at most ``concurrency`` in flight."""
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await job(index)

    async with asyncio.TaskGroup() as tasks:
        for _ in range(concurrency):
            tasks.create_task(worker())


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{p50 * 1000:.1f} ms / {p99 * 1000:.1f} ms"


async def timed(samples: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    durations = []
    for _ in range(samples):
        start = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - start)
    return durations


async def per_request(directory: Path, pods: int, services: int, concurrency: int) -> list[str]:
    rows = []
    async with server(directory) as client:
        for ns in namespaces():
            await client.create(ns)
        start = time.perf_counter()
        await bounded(pods, concurrency, lambda i: client.create(pod(i)))
        elapsed = time.perf_counter() - start
        rows.append(
            f"| create {pods:,} Pods, one per request, {concurrency} in flight "
            f"| {elapsed:.2f} s ({pods / elapsed:,.0f}/s) |"
        )
        start = time.perf_counter()
        await bounded(services, concurrency, lambda i: client.create(service(i)))
        elapsed = time.perf_counter() - start
        rows.append(
            f"| create {services:,} Services, one per request, {concurrency} in flight "
            f"| {elapsed:.2f} s ({services / elapsed:,.0f}/s) |"
        )
        rows.extend(await list_latencies(client, pods))
        rows.append(await watch_latency(client))
    rows.append(f"| store size on disk after the above | {disk_size(directory):.1f} MiB |")
    return rows


async def batched(directory: Path, pods: int, services: int, batch: int) -> list[str]:
    objects = namespaces() + [pod(i) for i in range(pods)] + [service(i) for i in range(services)]
    async with server(directory) as client:
        start = time.perf_counter()
        for offset in range(0, len(objects), batch):
            await client.apply(objects[offset : offset + batch])
        elapsed = time.perf_counter() - start
        again = time.perf_counter()
        for offset in range(0, len(objects), batch):
            await client.apply(objects[offset : offset + batch])
        unchanged = time.perf_counter() - again
    return [
        f"| batch apply {pods:,} Pods + {services:,} Services, {batch:,} per request "
        f"| {elapsed:.2f} s ({len(objects) / elapsed:,.0f}/s) |",
        f"| re-apply the same (all unchanged) | {unchanged:.2f} s |",
    ]


async def list_latencies(client: AsyncApiClient, pods: int) -> list[str]:
    all_pods = await timed(10, lambda: client.list(POD))
    one_ns = await timed(30, lambda: client.list(POD, "ns-3"))
    labelled = await timed(30, lambda: client.list(POD, label_selector="app=app-7"))
    on_node = await timed(10, lambda: client.list(POD, field_selector="spec.nodeName=node-1"))
    return [
        f"| list all {pods:,} Pods (p50 / p99) | {percentiles(all_pods)} |",
        f"| list one namespace ({pods // NAMESPACES:,} Pods) | {percentiles(one_ns)} |",
        f"| list by label selector ({pods // 100:,} Pods of {pods:,}) | {percentiles(labelled)} |",
        f"| list by field selector spec.nodeName ({pods // 3:,} Pods) | {percentiles(on_node)} |",
    ]


async def watch_latency(client: AsyncApiClient, writes: int = 300) -> str:
    """Time from sending a create to a watcher receiving its ADDED event."""
    sent: dict[str, float] = {}
    delays: list[float] = []
    start_rv = (await client.list(POD, "ns-0", label_selector="bench=watch")).resource_version
    async with client.watch(POD, "ns-0", resource_version=start_rv) as events:

        async def write() -> None:
            for index in range(writes):
                obj = pod(1_000_000 + index * NAMESPACES)
                obj["metadata"]["labels"]["bench"] = "watch"
                sent[obj["metadata"]["name"]] = time.perf_counter()
                await client.create(obj)

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(write())
            async for event in events:
                name = event.object["metadata"]["name"]
                if name in sent:
                    delays.append(time.perf_counter() - sent[name])
                if len(delays) == writes:
                    break
    return f"| watch delivery, create to ADDED event (p50 / p99) | {percentiles(delays)} |"


def disk_size(directory: Path) -> float:
    state = directory / "state"
    return sum(path.stat().st_size for path in state.iterdir() if path.is_file()) / (1 << 20)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    rows = ["| measurement | result |", "|---|---|"]
    with (
        tempfile.TemporaryDirectory(prefix="am-bench-") as one,
        tempfile.TemporaryDirectory(prefix="am-bench-") as two,
    ):
        rows += await per_request(Path(one), args.pods, args.services, args.concurrency)
        rows += await batched(Path(two), args.pods, args.services, args.batch)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; " + json.dumps(vars(args)))
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
