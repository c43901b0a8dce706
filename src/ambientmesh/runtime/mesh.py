"""Mesh wiring of one node: its ztunnel process and the node agent (the CNI role) that feeds it.

The runtime starts `ambientmesh ztunnel` inside the node's network namespace, serves it the
ZDS socket, and probes its readiness on 127.0.0.1:15021/healthz/ready in that namespace. The
node agent captures enrolled pods (label `istio.io/dataplane-mode=ambient` on the pod or its
namespace) and un-captures them when that changes, live, without restarting them; the pod's
annotation `ambient.istio.io/redirection` follows. No pod is captured before this node's
ztunnel has connected once: rules without a ztunnel behind them would break the pod's traffic.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Informer
from ambientmesh.backoff import Backoff
from ambientmesh.capture.node_agent import NodeAgent, PodFacts
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError
from ambientmesh.resources import kinds
from ambientmesh.runtime.containers import Container
from ambientmesh.runtime.network import NodeNetwork
from ambientmesh.runtime.paths import ClusterPaths
from ambientmesh.runtime.podworker import MeshHooks
from ambientmesh.runtime.prober import ProbeTarget, ReadinessProber
from ambientmesh.runtime.probes import HttpGet, Probe
from ambientmesh.runtime.processes import ContainerSpec, PodContext
from ambientmesh.runtime.workqueue import WorkQueue
from ambientmesh.runtime.writes import mutate, set_annotations

log = logging.getLogger(__name__)

POD = kinds.lookup("v1", "Pod")
READINESS = Probe(
    action=HttpGet(port=15021, path="/healthz/ready", host=IPv4Address("127.0.0.1")),
    period=1.0,
    timeout=1.0,
    failure_threshold=3,
)
PARTIAL_ADD_RETRY = 2.0
ZTUNNEL_GRACE = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshSettings:
    """How ztunnel is started: `command` is the program; the runtime adds the arguments."""

    command: Sequence[str] = (sys.executable, "-m", "ambientmesh", "ztunnel")
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"


def ztunnel_argv(
    settings: MeshSettings, *, cluster: str, node: str, paths: ClusterPaths
) -> tuple[str, ...]:
    """The ztunnel command line; the contract between the runtime and `ambientmesh ztunnel`."""
    return (
        *settings.command,
        "--node", node,
        "--cluster", cluster,
        "--zds-socket", str(paths.zds_socket(node)),
        "--credential-dir", str(paths.credential_dir(node)),
        "--control-plane", f"unix:{paths.xds_socket}",
        "--trust-domain", settings.trust_domain,
        "--cluster-domain", settings.cluster_domain,
    )  # fmt: skip


class NodeMesh(MeshHooks):
    def __init__(
        self,
        node: NodeNetwork,
        *,
        cluster: str,
        paths: ClusterPaths,
        client: AsyncApiClient,
        namespaces: Informer,
        clock: Clock,
        settings: MeshSettings,
    ) -> None:
        self.node = node
        self._client = client
        self._namespaces = namespaces
        self._clock = clock
        self._socket_dir = paths.node_dir(node.name)
        self.agent = NodeAgent(node=node.name, socket_path=str(paths.zds_socket(node.name)))
        self._pods: dict[str, tuple[dict[str, Any], str]] = {}  # uid -> (pod, netns)
        self._connected = asyncio.Event()
        self.ready = asyncio.Event()
        self.queue: WorkQueue[str] = WorkQueue(f"capture {node.name}", clock=clock)
        self.ztunnel = Container(
            ContainerSpec(
                name="ztunnel",
                argv=ztunnel_argv(settings, cluster=cluster, node=node.name, paths=paths),
            ),
            PodContext(
                name=f"ztunnel-{node.name}", namespace="istio-system", ip=node.ip,
                node_name=node.name, netns=node.netns, service_account="ztunnel",
            ),
            log_path=paths.ztunnel_log(node.name),
            backoff=Backoff(initial=1.0, maximum=30.0),
            clock=clock,
        )  # fmt: skip

    # ---------------------------------------------------------------- hooks for the kubelet

    def pod_running(self, pod: Mapping[str, Any], netns: str) -> None:
        uid = str(pod["metadata"]["uid"])
        self._pods[uid] = (dict(pod), netns)
        self.queue.add(uid)

    async def pod_stopped(self, uid: str) -> None:
        if self._pods.pop(uid, None) is not None:
            try:
                await self.agent.pod_deleted(uid)
            except MeshError as error:
                log.warning("node %s: un-capturing pod %s: %s", self.node.name, uid, error.message)

    def namespace_changed(self, namespace: str) -> None:
        for uid, (pod, _) in self._pods.items():
            if pod["metadata"].get("namespace") == namespace:
                self.queue.add(uid)

    # ---------------------------------------------------------------- life

    async def run(self) -> None:
        """Serve ZDS, run and probe ztunnel, and capture pods, until cancelled."""
        prober = ReadinessProber(
            READINESS,
            ProbeTarget(netns=self.node.netns, ip=self.node.ip),
            clock=self._clock,
            on_change=self._ztunnel_readiness,
        )
        started = asyncio.Event()
        self._socket_dir.mkdir(parents=True, exist_ok=True)
        async with asyncio.TaskGroup() as group:
            group.create_task(self.agent.serve(started=started))
            await started.wait()
            group.create_task(self.ztunnel.run())
            group.create_task(prober.run())
            group.create_task(self._wait_connected())
            group.create_task(self.queue.run(self._reconcile))

    async def stop_ztunnel(self) -> None:
        await self.ztunnel.stop(grace=ZTUNNEL_GRACE)

    def _ztunnel_readiness(self, ready: bool, result: object) -> None:
        log.info("node %s: ztunnel %s (%s)", self.node.name, "ready" if ready else "not ready",
                 getattr(result, "detail", ""))  # fmt: skip
        if ready:
            self.ready.set()

    async def _wait_connected(self) -> None:
        assert self.agent.zds is not None
        await self.agent.zds.wait_snapshots(1)
        log.info("node %s: ztunnel connected to the node agent", self.node.name)
        self._connected.set()

    async def _reconcile(self, uid: str) -> None:
        await self._connected.wait()
        entry = self._pods.get(uid)
        if entry is None:
            return
        pod, netns = entry
        metadata = pod["metadata"]
        namespace = str(metadata.get("namespace") or "default")
        facts = PodFacts(
            uid=uid,
            name=str(metadata["name"]),
            namespace=namespace,
            service_account=str((pod.get("spec") or {}).get("serviceAccountName") or "default"),
            netns=netns,
            ips=tuple(ip["ip"] for ip in (pod.get("status") or {}).get("podIPs") or []),
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            host_network=bool((pod.get("spec") or {}).get("hostNetwork")),
        )
        ns = self._namespaces.get(namespace)
        ns_labels = dict(((ns or {}).get("metadata") or {}).get("labels") or {})
        result = await self.agent.pod_changed(facts, ns_labels)
        current = dict(metadata.get("annotations") or {})
        if any(current.get(key) != value for key, value in result.annotations.items()):
            await mutate(
                self._client, POD, facts.name, namespace,
                lambda obj: obj["metadata"].get("uid") == uid
                and set_annotations(obj, result.annotations),
            )  # fmt: skip
            log.info("node %s: pod %s/%s %s (%s)", self.node.name, namespace, facts.name,
                     "captured" if result.captured else "not captured", result.reason)  # fmt: skip
        if result.ztunnel == "failed":
            log.warning("node %s: ztunnel refused pod %s/%s: %s", self.node.name, namespace,
                        facts.name, result.error)  # fmt: skip
            self.queue.add_after(uid, PARTIAL_ADD_RETRY)
