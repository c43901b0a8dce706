"""The per-cluster daemon: control plane, network, nodes and everything that runs on them.

    control plane (process in the router namespace) ── API ──┐
    per cluster: scheduler, Deployment and Job controllers,   │ informers: Pods, Nodes,
                 kube-proxy tables + cluster DNS (ServiceProxy)│ Namespaces, Services,
    per node:    kubelet (pod workers), node agent + ztunnel  ─┘ Deployments, Jobs

`run_supervisor` brings these up in order, reports progress to `status.json`, runs until
`stop` is set, then stops pods (within their grace, capped), ztunnels and the control plane,
and removes the cluster's network. If anything fails it still removes the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Change, Informer
from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError, NotFound, Unavailable
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.resources import kinds
from ambientmesh.runtime import nodes as node_objects
from ambientmesh.runtime import report
from ambientmesh.runtime.binder import Binder
from ambientmesh.runtime.containers import Container, State
from ambientmesh.runtime.controllers.loops import DeploymentController, JobController
from ambientmesh.runtime.dns import ClusterDns
from ambientmesh.runtime.dnszone import build_zone
from ambientmesh.runtime.ipam import Addressing, pod_pool
from ambientmesh.runtime.kubelet import Kubelet
from ambientmesh.runtime.mesh import MeshSettings, NodeMesh
from ambientmesh.runtime.network import ClusterNetwork, NodeNetwork
from ambientmesh.runtime.paths import ClusterPaths
from ambientmesh.runtime.podworker import FINALIZER, NodeContext
from ambientmesh.runtime.processes import ContainerSpec, PodContext
from ambientmesh.runtime.restarts import KUBELET_BACKOFF
from ambientmesh.runtime.serviceproxy import ServiceProxy
from ambientmesh.runtime.writes import mutate, remove_finalizer

log = logging.getLogger(__name__)

CONTROL_PLANE_DEADLINE = 60.0
CONTROL_PLANE_GRACE = 10.0
POLL = 0.1
INFORMED = ("v1/Pod", "v1/Node", "v1/Namespace", "v1/Service", "apps/v1/Deployment", "batch/v1/Job")


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorConfig:
    cluster: str
    paths: ClusterPaths
    nodes: int = 2
    addressing: Addressing = field(default_factory=Addressing)
    domain: str = "cluster.local"
    trust_domain: str = "cluster.local"
    mesh: MeshSettings | None = None  # None: no ztunnel, so nothing is ever captured
    backoff: Backoff = KUBELET_BACKOFF
    shutdown_grace: float = 5.0
    control_plane_command: Sequence[str] = (sys.executable, "-m", "ambientmesh", "control-plane")

    @property
    def node_names(self) -> list[str]:
        return [node_objects.node_name(index) for index in range(1, self.nodes + 1)]


async def run_supervisor(config: SupervisorConfig, *, clock: Clock, stop: asyncio.Event) -> None:
    """Run the cluster until `stop` is set; the network is removed however this ends."""
    paths = config.paths
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    reporter = report.Reporter(
        paths.status_file, mesh=config.mesh is not None, nodes=config.node_names
    )
    network = ClusterNetwork(config.cluster, addressing=config.addressing, domain=config.domain)
    cluster = _Cluster(config, network, reporter, clock)
    try:
        await cluster.run(stop)
    except BaseException as error:
        reporter.phase(report.FAILED, _describe(error))
        raise
    finally:
        await cluster.close()
        removed = await network.teardown()
        log.info("removed %d network namespaces", len(removed))


class _Cluster:
    """The running parts, so that `close` can undo whatever `run` got to."""

    def __init__(
        self, config: SupervisorConfig, network: ClusterNetwork, reporter: report.Reporter,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.config = config
        self.network = network
        self.reporter = reporter
        self.clock = clock
        self.client: AsyncApiClient | None = None
        self.dns_sockets: tuple[socket.socket, socket.socket] | None = None
        self.kubelets: list[Kubelet] = []
        self.meshes: list[NodeMesh] = []
        self.control_plane: Container | None = None
        self.informers: dict[str, Informer] = {}
        self.proxy: ServiceProxy | None = None
        self.warned_images: set[str] = set()
        self.tasks: list[asyncio.Task[Any]] = []
        self.mesh_tasks: list[asyncio.Task[Any]] = []
        self.last_tasks: list[asyncio.Task[Any]] = []

    async def run(self, stop: asyncio.Event) -> None:
        """Start up (unless stopped first), serve until `stop`, then shut down in order."""
        self._mint_node_credentials()
        await self.network.create()
        async with asyncio.TaskGroup() as group:
            startup = group.create_task(self._start_up(group))
            stopped = group.create_task(stop.wait())
            await asyncio.wait((startup, stopped), return_when=asyncio.FIRST_COMPLETED)
            if startup.done():
                self.reporter.phase(report.READY)
                log.info("cluster %s is ready", self.config.cluster)
                await stopped
            else:
                startup.cancel()
            self.reporter.phase(report.STOPPING)
            await self._shutdown()

    async def _start_up(self, group: asyncio.TaskGroup) -> None:
        config, paths = self.config, self.config.paths
        self.control_plane = self._control_plane_container()
        self.last_tasks.append(group.create_task(self.control_plane.run()))
        self.client = AsyncApiClient(ServerAddress(socket=paths.api_socket))
        await self._wait_for_api()
        self.reporter.step("control plane ready")
        node_networks = [
            await self.network.add_node(name, index)
            for index, name in enumerate(config.node_names, start=1)
        ]
        self.reporter.step(f"network ready: {len(node_networks)} nodes")
        dns = ClusterDns(build_zone(config.domain, {}))
        self.dns_sockets = self.network.dns_sockets()
        await node_objects.register(self.client, node_networks, now=self.clock.now())
        self._start(group, node_networks, dns)
        await self._until_ready()

    def _start(
        self, group: asyncio.TaskGroup, node_networks: list[NodeNetwork], dns: ClusterDns
    ) -> None:
        """Start informers, controllers, kubelets and meshes, wired to each other."""
        assert self.client is not None
        assert self.dns_sockets is not None
        config, client, clock = self.config, self.client, self.clock
        informers = self.informers = {
            name: Informer(client, kinds.lookup(*name.rsplit("/", 1)), clock=clock)
            for name in INFORMED
        }
        binder = Binder(client, pods=informers["v1/Pod"], nodes=informers["v1/Node"], clock=clock)
        deployments = DeploymentController(client, clock=clock)
        jobs = JobController(client, clock=clock, backoff=config.backoff.initial)
        proxy = self.proxy = ServiceProxy(
            services=informers["v1/Service"], pods=informers["v1/Pod"], nodes=node_networks,
            dns=dns, domain=config.domain, clock=clock,
        )  # fmt: skip
        for node in node_networks:
            self._add_node(node, informers["v1/Namespace"])
        _subscribe(
            informers["v1/Pod"],
            self._to_kubelet, binder.on_pod, deployments.on_pod, jobs.on_pod, proxy.changed,
        )  # fmt: skip
        _subscribe(informers["v1/Node"], binder.on_node)
        _subscribe(informers["v1/Namespace"], self._to_meshes)
        _subscribe(informers["v1/Service"], proxy.changed)
        _subscribe(informers["apps/v1/Deployment"], deployments.on_owner)
        _subscribe(informers["batch/v1/Job"], jobs.on_owner)
        runs: list[Callable[[], Coroutine[Any, Any, None]]] = [
            *(informer.run for informer in informers.values()),
            binder.run, deployments.run, jobs.run, proxy.run,
            *(kubelet.run for kubelet in self.kubelets),
        ]  # fmt: skip
        self.tasks += [group.create_task(run()) for run in runs]
        self.tasks.append(group.create_task(dns.serve(*self.dns_sockets)))
        self.mesh_tasks += [group.create_task(mesh.run()) for mesh in self.meshes]

    def _to_kubelet(self, change: Change) -> None:
        """A pod change goes to the kubelet of the pod's node, if it has one."""
        node = (change.object.get("spec") or {}).get("nodeName")
        for kubelet in self.kubelets:
            if kubelet.node == node:
                kubelet.on_pod(change)

    def _to_meshes(self, change: Change) -> None:
        """A namespace's labels decide enrollment of its pods, on every node."""
        for mesh in self.meshes:
            mesh.namespace_changed(str(change.object["metadata"]["name"]))

    def _add_node(self, node: NodeNetwork, namespaces: Informer) -> None:
        assert self.client is not None
        config = self.config
        mesh = None
        if config.mesh is not None:
            mesh = NodeMesh(
                node, cluster=config.cluster, paths=config.paths, client=self.client,
                namespaces=namespaces, clock=self.clock, settings=config.mesh,
            )  # fmt: skip
            self.meshes.append(mesh)
        context = NodeContext(
            node=node,
            network=self.network,
            pool=pod_pool(self.network.addressing, node.index),
            client=self.client,
            paths=config.paths,
            clock=self.clock,
            backoff=config.backoff,
            mesh=mesh,
            warned=self.warned_images,  # shared: one warning per image for the whole cluster
        )
        self.kubelets.append(Kubelet(context, shutdown_grace=config.shutdown_grace))

    async def _until_ready(self) -> None:
        for informer in self.informers.values():
            await informer.wait_synced()
        await self._collect_orphans()
        assert self.proxy is not None
        await self.proxy.synced.wait()
        self.reporter.step("kube-proxy and cluster DNS ready")
        for mesh in self.meshes:
            await mesh.ready.wait()
            self.reporter.step(f"ztunnel ready on {mesh.node.name}")

    async def _collect_orphans(self) -> None:
        """Pods our kubelets ran on nodes that no longer exist (an earlier, larger cluster)."""
        assert self.client is not None
        wanted = set(self.config.node_names)
        for pod in self.informers["v1/Pod"].items():
            node = (pod.get("spec") or {}).get("nodeName")
            metadata = pod["metadata"]
            if node and node not in wanted and FINALIZER in (metadata.get("finalizers") or []):
                pod_kind = kinds.lookup("v1", "Pod")
                await mutate(self.client, pod_kind, metadata["name"], metadata["namespace"],
                             lambda obj: remove_finalizer(obj, FINALIZER))  # fmt: skip
                with contextlib.suppress(NotFound):
                    await self.client.delete(pod_kind, metadata["name"], metadata["namespace"])

    async def _shutdown(self) -> None:
        """Pods first (they may still talk to each other), then the mesh, then the API."""
        async with asyncio.TaskGroup() as group:
            for kubelet in self.kubelets:
                group.create_task(kubelet.shutdown())
        await _cancel(self.tasks)
        async with asyncio.TaskGroup() as group:
            for mesh in self.meshes:
                group.create_task(mesh.stop_ztunnel())
        await _cancel(self.mesh_tasks)
        if self.control_plane is not None:
            await self.control_plane.stop(grace=CONTROL_PLANE_GRACE)
        await _cancel(self.last_tasks)

    async def close(self) -> None:
        if self.dns_sockets is not None:
            for sock in self.dns_sockets:
                sock.close()  # our sockets would keep the router namespace alive
        if self.client is not None:
            await self.client.aclose()

    # ---------------------------------------------------------------- control plane

    def _mint_node_credentials(self) -> None:
        """One credential per node (URI SAN spiffe://<td>/ambientmesh/node/<node>), for ztunnel.

        Minted before the control plane starts, so the CA files have one user at a time.
        """
        if self.config.mesh is None:
            return
        paths = self.config.paths
        ca = CertificateAuthority.open(
            paths.state_dir, settings=CaSettings(trust_domain=self.config.trust_domain),
            clock=self.clock,
        )  # fmt: skip
        for node in self.config.node_names:
            ca.write_node_credential(node, paths.credential_dir(node))
        ca.flush()

    def _control_plane_container(self) -> Container:
        config, paths = self.config, self.config.paths
        argv = (
            *config.control_plane_command,
            "--cluster", config.cluster,
            "--state-dir", str(paths.state_dir),
            "--run-dir", str(paths.run_dir),
            "--service-cidr", str(config.addressing.service_cidr),
            "--cluster-domain", config.domain,
            "--trust-domain", config.trust_domain,
        )  # fmt: skip
        return Container(
            ContainerSpec(name="control-plane", argv=argv),
            # It runs inside the router namespace: reachable only through its unix sockets,
            # and `down` finds it there like every other process of the cluster.
            PodContext(
                name="control-plane", namespace="istio-system",
                ip=config.addressing.router_ip, node_name="", netns=self.network.router_netns,
                service_account="istiod",
            ),
            log_path=paths.control_plane_log,
            backoff=Backoff(initial=1.0, maximum=30.0),
            clock=self.clock,
        )  # fmt: skip

    async def _wait_for_api(self) -> None:
        assert self.client is not None
        assert self.control_plane is not None
        try:
            async with asyncio.timeout(CONTROL_PLANE_DEADLINE):
                while True:
                    status = self.control_plane.status
                    if status.state is State.TERMINATED or status.restart_count:
                        raise Unavailable(
                            f"the control plane exited ({status.reason}, exit code "
                            f"{status.exit_code}); see {self.config.paths.control_plane_log}"
                        )
                    with contextlib.suppress(Unavailable):
                        if await self.client.request("GET", "/readyz") == "ok":
                            return
                    await self.clock.sleep(POLL)
        except TimeoutError:
            raise Unavailable(
                f"the control plane did not answer within {CONTROL_PLANE_DEADLINE:.0f} s; "
                f"see {self.config.paths.control_plane_log}"
            ) from None


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _subscribe(informer: Informer, *handlers: Callable[[Change], None]) -> None:
    for handler in handlers:
        informer.add_handler(handler)


def _describe(error: BaseException) -> str:
    if isinstance(error, MeshError):
        return error.message
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    if isinstance(error, asyncio.CancelledError):
        return "stopped"
    return f"{type(error).__name__}: {error}"
