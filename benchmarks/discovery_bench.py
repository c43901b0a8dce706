"""Discovery at cluster scale: full computation, memory, and one pod change to 20 ztunnels.

    .venv/bin/python benchmarks/discovery_bench.py [--pods 10000 --services 1000
        --policies 200 --nodes 20 --clients 20 --changes 100]

Builds the cluster as stored objects, runs the ambient computation over all of it (timed,
with tracemalloc's peak), serves the result over delta ADS with mutual TLS on a unix socket
to ``--clients`` subscribed ztunnel clients, then changes one pod at a time and measures how
long until every client has applied it, and how many bytes the server pushed per change.
Everything runs in one process on loopback; nothing is sent anywhere else.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import grpc

from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex
from ambientmesh.controlplane.discovery import DiscoveryFeed
from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.proto.workload_pb2 import Address
from ambientmesh.testing.pki import TestPKI
from ambientmesh.xds.client import KEEPALIVE_OPTIONS, DeltaDiscoveryClient
from ambientmesh.xds.server import SERVER_OPTIONS, DeltaDiscoveryServer
from ambientmesh.xds.session import Update, Watch
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, Peer

SERVER_NAME = "istiod.istio-system.svc"


def cluster(pods: int, services: int, policies: int, nodes: int) -> list[dict[str, Any]]:
    namespaces = max(1, services // 20)
    objects: list[dict[str, Any]] = []
    for n in range(nodes):
        zone = {"topology.kubernetes.io/zone": f"z{n % 3}"}
        objects.append({"kind": "Node", "metadata": {"name": f"node-{n}", "labels": zone}})
    for ns in range(namespaces):
        labels = {"istio.io/dataplane-mode": "ambient"}
        objects.append({"kind": "Namespace", "metadata": {"name": f"ns-{ns}", "labels": labels}})
    for s in range(services):
        objects.append(
            {
                "kind": "Service",
                "metadata": {"name": f"svc-{s}", "namespace": f"ns-{s % namespaces}"},
                "spec": {
                    "selector": {"app": f"app-{s}"},
                    "clusterIP": f"10.96.{s // 250}.{s % 250 + 1}",
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            }
        )
    for p in range(pods):
        objects.append(pod(p, services, namespaces, nodes, ready=True))
    for a in range(policies):
        spec = {
            "selector": {"matchLabels": {"app": f"app-{a * (services // max(policies, 1))}"}},
            "rules": [
                {
                    "from": [{"source": {"principals": [f"cluster.local/ns/ns-0/sa/sa-{a}"]}}],
                    "to": [{"operation": {"ports": ["8080"]}}],
                }
            ],
        }
        objects.append(
            {
                "kind": "AuthorizationPolicy",
                "metadata": {"name": f"policy-{a}", "namespace": f"ns-{a % namespaces}"},
                "spec": spec,
            }
        )
    return objects


def pod(p: int, services: int, namespaces: int, nodes: int, *, ready: bool) -> dict[str, Any]:
    app = p % services
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{p}",
            "namespace": f"ns-{app % namespaces}",
            "labels": {"app": f"app-{app}"},
            "ownerReferences": [{"kind": "Deployment", "name": f"app-{app}"}],
        },
        "spec": {
            "nodeName": f"node-{p % nodes}",
            "serviceAccountName": f"sa-{app}",
            "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.{128 + p // 65536}.{p // 256 % 256}.{p % 256}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


class Recorder:
    """A client's handler that notes when it applied a given workload."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: dict[str, float] = {}
        self.event = asyncio.Event()

    def addresses(self, updates: Sequence[Update[Address]], removed: Sequence[str]) -> None:
        now = time.perf_counter()
        self.count += len(updates)
        for update in updates:
            self.seen[update.name] = now
        self.event.set()

    def policies(self, updates: Sequence[Update[Authorization]], removed: Sequence[str]) -> None:
        self.event.set()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def bench(args: argparse.Namespace) -> None:
    objects = cluster(args.pods, args.services, args.policies, args.nodes)
    index = AmbientIndex(MeshConfig())
    tracemalloc.start()
    started = time.perf_counter()
    changes = index.apply_all((obj["kind"], obj) for obj in objects)
    computed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"objects: {len(objects)}; outputs: {len(changes.addresses)} addresses, "
        f"{len(changes.authorizations)} authorizations"
    )
    print(f"full computation: {computed * 1000:.0f} ms; tracemalloc peak {peak / 2**20:.1f} MiB")

    pki = TestPKI()
    server_cred = pki.issue_with_sans(dns_names=[SERVER_NAME])
    discovery = DeltaDiscoveryServer(
        authenticate=lambda context: Peer(node="bench", identity="bench"),
        type_order=(AUTHORIZATION_TYPE_URL, ADDRESS_TYPE_URL),
    )
    feed = DiscoveryFeed(index, discovery)
    started = time.perf_counter()
    feed.publish(changes)
    print(f"encode all into the discovery table: {(time.perf_counter() - started) * 1000:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers((discovery.rpc_handler(),))
        server.add_secure_port(
            f"unix:{tmp}/xds.sock",
            grpc.ssl_server_credentials(
                [(server_cred.key_pem, server_cred.chain_pem)],
                root_certificates=pki.roots_pem,
                require_client_auth=True,
            ),
        )
        await server.start()
        recorders = [Recorder() for _ in range(args.clients)]
        async with asyncio.TaskGroup() as group:
            tasks = []
            for i, recorder in enumerate(recorders):
                node = pki.issue_node_credential(f"node-{i}")
                creds = grpc.ssl_channel_credentials(pki.roots_pem, node.key_pem, node.chain_pem)
                options = (
                    *KEEPALIVE_OPTIONS,
                    ("grpc.ssl_target_name_override", SERVER_NAME),
                    ("grpc.max_receive_message_length", 256 << 20),
                )
                client = DeltaDiscoveryClient(
                    connect=lambda c=creds, o=options: grpc.aio.secure_channel(  # type: ignore[misc]
                        f"unix:{tmp}/xds.sock", c, options=o
                    ),
                    node=Node(id=f"ztunnel~node-{i}"),
                    watches=[
                        Watch(
                            type_url=ADDRESS_TYPE_URL,
                            message_type=Address,
                            apply=recorder.addresses,
                        ),
                        Watch(
                            type_url=AUTHORIZATION_TYPE_URL,
                            message_type=Authorization,
                            apply=recorder.policies,
                        ),
                    ],
                    clock=SystemClock(),
                    rng=random.Random(i),
                    first_response_timeout=300,
                )
                tasks.append(group.create_task(client.run()))
            started = time.perf_counter()
            for recorder in recorders:
                while recorder.count < len(changes.addresses):
                    recorder.event.clear()
                    await recorder.event.wait()
            print(f"initial sync of {args.clients} clients: {time.perf_counter() - started:.1f} s")

            latencies: list[float] = []
            compute: list[float] = []
            bytes_before = discovery.stats.bytes_sent
            rng = random.Random(7)
            unready: set[int] = set()
            for _ in range(args.changes):
                p = rng.randrange(args.pods)
                unready ^= {p}  # flip readiness: every change is a real change
                obj = pod(
                    p,
                    args.services,
                    max(1, args.services // 20),
                    args.nodes,
                    ready=p not in unready,
                )
                uid = f"Kubernetes//Pod/{obj['metadata']['namespace']}/pod-{p}"
                for recorder in recorders:
                    recorder.seen.pop(uid, None)
                t0 = time.perf_counter()
                feed.publish(index.apply("Pod", obj))
                compute.append(time.perf_counter() - t0)
                for recorder in recorders:
                    while uid not in recorder.seen:
                        recorder.event.clear()
                        await recorder.event.wait()
                latencies.append(max(recorder.seen[uid] for recorder in recorders) - t0)
            pushed = discovery.stats.bytes_sent - bytes_before
            ms = [latency * 1000 for latency in latencies]
            print(
                f"one pod change -> applied by all {args.clients} clients, over {args.changes} "
                f"changes: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
                f"max {max(ms):.1f} ms"
            )
            print(f"computation per change: median {statistics.median(compute) * 1e6:.0f} us")
            print(
                f"bytes pushed per change: {pushed / args.changes:.0f} total, "
                f"{pushed / args.changes / args.clients:.0f} per client"
            )
            for task in tasks:
                task.cancel()
        await server.stop(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--changes", type=int, default=100)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
