"""A whole mesh in one process on loopback: the control plane, a node agent's ZDS server, a
ztunnel serving "pods" that are loopback addresses, and small applications in those pods."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.capture.zds_server import ZdsPod, ZdsServer
from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.app import ControlPlaneSettings, run_control_plane
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.io.sockets import TcpSocketFactory
from ambientmesh.resources import kinds
from ambientmesh.waypoint.app import WaypointEndpoints, run_waypoint
from ambientmesh.waypoint.config import WaypointConfig
from ambientmesh.waypoint.proxy import Dialer
from ambientmesh.ztunnel.app import Endpoints, run_ztunnel
from ambientmesh.ztunnel.config import ZtunnelConfig
from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.loopback import LoopbackNet

WAIT = 20.0
NODE = "node-1"
AMBIENT = {"istio.io/dataplane-mode": "ambient"}
POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")


async def closed_by_peer(reader: asyncio.StreamReader) -> None:
    """Read until the peer closes: reset or EOF (what a client of a refused or cut connection
    sees), within the harness's deadline."""
    async with asyncio.timeout(WAIT):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass


def sum_samples(text: str, name: str, **labels: str) -> float:
    """Sum of ``name`` in Prometheus text over the series whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


@dataclass
class App:
    """A TCP application in a pod: echoes, after a first line naming the peer it saw."""

    ip: str
    server: asyncio.Server
    peers: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])


@asynccontextmanager
async def running_app(ip: str) -> AsyncIterator[App]:
    """A TCP application listening on ``ip`` (a pod), closed on exit."""
    app: App

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        app.peers.append(peer[0])
        writer.write(f"hello {peer[0]}\n".encode())
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, ip, 0)
    app = App(ip=ip, server=server)
    try:
        yield app
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Mesh:
    run_dir: Path
    api: AsyncApiClient
    ca: CertificateAuthority
    net: LoopbackNet
    zds: ZdsServer
    zds_pods: dict[str, ZdsPod]
    endpoints: Endpoints
    config: ZtunnelConfig
    stop: asyncio.Event
    http: aiohttp.ClientSession
    ztunnel: asyncio.Task[None]
    stop_control_plane: Callable[[], Awaitable[None]]
    uids: dict[str, str] = field(default_factory=dict)  # pod name -> uid

    async def add_pod(
        self,
        name: str,
        ip: str,
        *,
        namespace: str = "shop",
        service_account: str = "default",
        labels: dict[str, str] | None = None,
        captured: bool = True,
        node: str = NODE,
    ) -> str:
        """Create, start and (when ``captured``) hand a pod to ztunnel; returns its uid."""
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {
                "nodeName": node,
                "serviceAccountName": service_account,
                "containers": [{"name": "app", "image": "app"}],
            },
        }
        if not captured:
            pod["metadata"]["labels"] = {**(labels or {}), "istio.io/dataplane-mode": "none"}
        await self.api.apply([pod])
        created = await self.api.get(POD, name, namespace)
        created["status"] = {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
        await self.api.update_status(created)
        uid = created["metadata"]["uid"]
        self.uids[name] = uid
        self.net.ips[uid] = ip
        if captured:
            info = WorkloadInfo(name=name, namespace=namespace, service_account=service_account)
            zds_pod = ZdsPod(uid=uid, info=info, netns_path="/proc/self/ns/net")
            self.zds_pods[uid] = zds_pod
            await self.zds.add(zds_pod)
        return uid

    async def remove_pod(self, name: str) -> None:
        uid = self.uids.pop(name)
        self.zds_pods.pop(uid, None)
        await self.zds.delete(uid)

    async def apply(self, *objects: dict[str, Any]) -> None:
        await self.api.apply(list(objects))

    async def service(
        self, name: str, selector: dict[str, str], port: int, target: int, **labels: str
    ) -> str:
        """A Service; returns its cluster IP."""
        await self.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "shop", "labels": labels},
                "spec": {
                    "selector": selector,
                    "ports": [{"name": "tcp", "port": port, "targetPort": target}],
                },
            }
        )
        made = await self.api.get(SERVICE, name, "shop")
        return str(made["spec"]["clusterIP"])

    async def admin(self, path: str = "/config_dump") -> Any:
        host, port = self.endpoints.admin
        async with self.http.get(f"http://{host}:{port}{path}") as response:
            return json.loads(await response.text())

    async def metrics(self) -> str:
        host, port = self.endpoints.metrics
        async with self.http.get(f"http://{host}:{port}/stats/prometheus") as response:
            return await response.text()

    async def samples(self, name: str, **labels: str) -> float:
        """The sum of metric ``name`` over the series whose labels include ``labels``."""
        return sum_samples(await self.metrics(), name, **labels)

    async def counted(self, name: str, expected: float, **labels: str) -> None:
        """Wait until ``name`` (summed over matching series) reaches ``expected``: connection
        ends are counted when the proxy notices them, a moment after the client closed."""
        async with asyncio.timeout(WAIT):
            while True:
                found = await self.samples(name, **labels)
                if found >= expected:
                    break
                await asyncio.sleep(0.02)  # the proxy's counters: nothing to wait on
        assert found == expected, f"{name}{labels} = {found}, expected {expected}"

    async def ready(self) -> tuple[int, str]:
        _, port = self.endpoints.readiness
        async with self.http.get(f"http://127.0.0.1:{port}/healthz/ready") as response:
            return response.status, await response.text()

    async def until(
        self, check: Callable[[dict[str, Any]], bool], what: str, within: float = WAIT
    ) -> dict[str, Any]:
        """Poll the ztunnel's config dump until ``check`` holds (another component's state
        has no event we could wait on)."""
        async with asyncio.timeout(within):
            while True:
                dump = await self.admin()
                if check(dump):
                    return dump
                await asyncio.sleep(0.05)
        raise AssertionError(what)

    async def dial(
        self, client_ip: str, destination: SocketAddr
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection from the pod at ``client_ip`` to ``destination``, captured to 15001."""
        sock = await self.net.dial(client_ip, 15001, destination)
        return await asyncio.open_connection(sock=sock)

    async def dial_plaintext(
        self, client_ip: str, pod_ip: str, destination: SocketAddr
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An uncaptured client at ``client_ip`` reaching a captured pod, redirected to 15006."""
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((client_ip, 0))
        self.net.redirected[sock.getsockname()[:2]] = destination
        await asyncio.get_running_loop().sock_connect(sock, self.net.listening(pod_ip, 15006))
        return await asyncio.open_connection(sock=sock)


@asynccontextmanager
async def loopback_mesh(**overrides: Any) -> AsyncIterator[Mesh]:
    """The control plane, ZDS and one ztunnel, all in this event loop; torn down on exit."""
    root = Path(tempfile.mkdtemp(prefix="amzt-", dir="/tmp"))  # short: unix socket paths
    settings = ControlPlaneSettings(
        state_dir=root / "state", run_dir=root / "run", drain_seconds=0.2
    )
    stop_cp, cp_ready = asyncio.Event(), asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            control_plane = group.create_task(
                run_control_plane(
                    settings, clock=SystemClock(), stop=stop_cp, on_ready=cp_ready.set
                )
            )

            async def stop_control_plane() -> None:
                stop_cp.set()
                await asyncio.wait({control_plane})

            try:
                async with asyncio.timeout(WAIT):
                    await cp_ready.wait()
                async with _ztunnel(root, settings, group, overrides, stop_control_plane) as mesh:
                    yield mesh
            finally:
                stop_cp.set()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def _ztunnel(
    root: Path,
    settings: ControlPlaneSettings,
    group: asyncio.TaskGroup,
    overrides: dict[str, Any],
    stop_control_plane: Callable[[], Awaitable[None]],
) -> AsyncIterator[Mesh]:
    ca = CertificateAuthority.open(settings.state_dir, settings=CaSettings())
    credential_dir = root / "run" / "nodes" / NODE / "credential"
    ca.write_node_credential(NODE, credential_dir)
    net = LoopbackNet()
    zds_pods: dict[str, ZdsPod] = {}
    zds_path = root / "run" / "nodes" / NODE / "zds.sock"
    zds = ZdsServer(str(zds_path), lambda: list(zds_pods.values()))
    zds_started = asyncio.Event()
    zds_task = group.create_task(zds.serve(started=zds_started))
    await zds_started.wait()
    config = ZtunnelConfig(
        node=NODE,
        xds_address=f"unix:{settings.xds_socket}",
        ca_address=f"unix:{settings.xds_socket}",
        credential_dir=credential_dir,
        zds_socket=zds_path,
        admin_address=("127.0.0.1", 0),
        metrics_address=("127.0.0.1", 0),
        readiness_address=("127.0.0.1", 0),
        drain_deadline=2.0,
    )
    config = replace(config, **overrides)
    stop = asyncio.Event()
    bound: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    ztunnel = group.create_task(
        run_ztunnel(
            config,
            clock=SystemClock(),
            rng=random.Random(7),
            stop=stop,
            pod_network=net.network,
            on_ready=bound.set_result,
        )
    )
    api = AsyncApiClient(ServerAddress(socket=settings.api_socket))
    try:
        namespace = {"apiVersion": "v1", "kind": "Namespace"}
        await api.apply([{**namespace, "metadata": {"name": "shop", "labels": AMBIENT}}])
        async with asyncio.timeout(WAIT):
            endpoints = await bound
        async with aiohttp.ClientSession() as http:
            yield Mesh(
                run_dir=root / "run",
                api=api,
                ca=ca,
                net=net,
                zds=zds,
                zds_pods=zds_pods,
                endpoints=endpoints,
                config=config,
                stop=stop,
                http=http,
                ztunnel=ztunnel,
                stop_control_plane=stop_control_plane,
            )
    finally:
        stop.set()
        await asyncio.wait({ztunnel})
        zds_task.cancel()
        await api.aclose()


WAYPOINT_LABELS = {
    "gateway.networking.k8s.io/gateway-name": "waypoint",
    "gateway.istio.io/managed": "istio.io-mesh-controller",
    "networking.istio.io/tunnel": "http",
}


@asynccontextmanager
async def running_waypoint(
    mesh: Mesh, ip: str, *, traffic: str = "service"
) -> AsyncIterator[WaypointEndpoints]:
    """The Gateway ``shop/waypoint`` (for ``traffic``: service, workload or all), its pod at
    ``ip`` and the waypoint proxy serving it."""
    await mesh.apply(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": "waypoint",
                "namespace": "shop",
                "labels": {"istio.io/waypoint-for": traffic},
            },
            "spec": {
                "gatewayClassName": "istio-waypoint",
                "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
            },
        }
    )
    await mesh.add_pod(
        "waypoint-0", ip, service_account="waypoint", labels=WAYPOINT_LABELS, captured=False
    )
    config = WaypointConfig(
        gateway_namespace="shop",
        gateway_name="waypoint",
        pod_name="waypoint-0",
        pod_namespace="shop",
        node=NODE,
        service_account="waypoint",
        xds_address=mesh.config.xds_address,
        ca_address=mesh.config.ca_address,
        credential_dir=mesh.config.credential_dir,
        hbone_address=(ip, 0),
        readiness_address=("127.0.0.1", 0),
        drain_deadline=1.0,
    )

    def hbone_address(address: SocketAddr) -> tuple[str, int]:
        key = (str(address.ip), address.port)
        return mesh.net.listening(*key) if key in mesh.net.ports else key

    dialer = Dialer(socket_factory=TcpSocketFactory(source_ip=ip), hbone_address=hbone_address)
    stop = asyncio.Event()
    bound: asyncio.Future[WaypointEndpoints] = asyncio.get_running_loop().create_future()
    async with asyncio.TaskGroup() as group:
        group.create_task(
            run_waypoint(
                config,
                clock=SystemClock(),
                rng=random.Random(3),
                stop=stop,
                dialer=dialer,
                on_ready=bound.set_result,
            )
        )
        try:
            async with asyncio.timeout(WAIT):
                endpoints = await bound
            mesh.net.ports[(ip, 15008)] = endpoints.hbone[1]
            yield endpoints
        finally:
            stop.set()
