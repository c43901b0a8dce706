"""A throwaway meshed cluster built the way the local runtime builds one, for end-to-end tests.

Network namespaces and routes (``ClusterNetwork``), the control plane as a process, one node
agent per node (in this process, as the runtime runs it), one ``ztunnel --node`` process per
node inside the node's namespace, echo applications as processes inside pod namespaces, and
kube-proxy rules so pods outside the mesh reach Service VIPs. Every name carries the pid and a
random suffix; ``close`` removes everything, also after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.capture.node_agent import NodeAgent, PodFacts
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.linux import netns
from ambientmesh.resources import kinds
from ambientmesh.runtime import endpoints, kubeproxy
from ambientmesh.runtime.ipam import pod_pool
from ambientmesh.runtime.network import ClusterNetwork, NodeNetwork, PodNetwork
from ambientmesh.runtime.paths import ClusterPaths
from tests.namespaced.conftest import unique_cluster_name

REPO = Path(__file__).resolve().parents[3]
WAIT = 30.0
POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")
AMBIENT = {"istio.io/dataplane-mode": "ambient"}
UNCAPTURED = {"istio.io/dataplane-mode": "none"}
KEEP_LOGS = "AMBIENTMESH_TEST_KEEP_LOGS"  # set to keep every process's log for a post-mortem
ECHO_PORTS = {"http": 8080, "h2c": 8081, "tcp": 9000, "tcp-server": 9001}


@dataclass
class Process:
    """A process we started (inside a namespace), with its log file."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                async with asyncio.timeout(grace):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        return self.process.returncode or 0


@dataclass
class Pod:
    name: str
    namespace: str
    node: str
    uid: str
    network: PodNetwork
    labels: dict[str, str]
    service_account: str
    app: Process | None = None

    @property
    def ip(self) -> str:
        return str(self.network.ip)

    @property
    def netns(self) -> str:
        return self.network.netns


@dataclass
class MeshCluster:
    name: str
    root: Path
    paths: ClusterPaths
    network: ClusterNetwork
    nodes: dict[str, NodeNetwork] = field(default_factory=dict)
    pools: dict[str, Any] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    agents: dict[str, NodeAgent] = field(default_factory=dict)
    ztunnels: dict[str, Process] = field(default_factory=dict)
    status_ports: dict[str, int] = field(default_factory=dict)  # node -> its ztunnel's admin port
    processes: list[Process] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    control_plane: Process | None = None
    api: AsyncApiClient | None = None
    ca: CertificateAuthority | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _group: asyncio.TaskGroup | None = None

    # ------------------------------------------------------------------ processes

    async def spawn(self, name: str, where: str | None, *argv: str) -> Process:
        """Start ``argv`` with Python's interpreter, inside network namespace ``where``."""
        return await self.spawn_program(name, where, sys.executable, *argv)

    async def spawn_program(self, name: str, where: str | None, *argv: str) -> Process:
        """Start ``argv`` inside network namespace ``where``; output goes to a log file."""
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        prefix = ("ip", "netns", "exec", where) if where else ()
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *prefix, *argv,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
                cwd=REPO, env=dict(os.environ), start_new_session=True,
            )  # fmt: skip
        started = Process(name=name, process=process, log=log)
        self.processes.append(started)
        return started

    async def wait_log(self, process: Process, text: str) -> None:
        async with asyncio.timeout(WAIT):
            while text not in process.log.read_text(errors="replace"):
                if not process.alive:
                    raise AssertionError(f"{process.name} exited:\n{process.tail()}")
                await asyncio.sleep(0.05)  # another process's output: nothing to wait on

    # ------------------------------------------------------------------ control plane

    async def start_control_plane(self) -> None:
        self.control_plane = await self.spawn(
            "control-plane", None, "-m", "ambientmesh", "control-plane", "--cluster", self.name,
            "--state-dir", str(self.paths.state_dir), "--run-dir", str(self.paths.run_dir),
        )  # fmt: skip
        await self.wait_log(self.control_plane, "discovery ready")
        if self.api is None:
            self.api = AsyncApiClient(ServerAddress(socket=self.paths.api_socket))
        if self.ca is None:
            self.ca = CertificateAuthority.open(self.paths.state_dir, settings=CaSettings())

    # ------------------------------------------------------------------ nodes and ztunnels

    async def add_node(self, name: str, index: int) -> NodeNetwork:
        node = await self.network.add_node(name, index)
        self.nodes[name] = node
        self.pools[name] = pod_pool(self.network.addressing, index)
        assert self.ca is not None
        self.ca.write_node_credential(name, self.paths.credential_dir(name))
        agent = NodeAgent(node=name, socket_path=str(self.paths.zds_socket(name)))
        self.agents[name] = agent
        started = asyncio.Event()
        assert self._group is not None
        self._tasks.append(self._group.create_task(agent.serve(started=started)))
        await started.wait()
        await self.api_objects({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        return node

    async def start_ztunnel(self, node: str, *, tag: str = "", port_base: int = 15000) -> Process:
        """Start a ztunnel for ``node`` and wait until it is ready. A second one for the same
        node (a restart) gets its own status ports, so we know which one answered."""
        self.status_ports[node] = port_base
        process = await self.spawn(
            f"ztunnel-{node}{tag}", self.nodes[node].netns,
            "-m", "tests.namespaced.ztunnel.commands", "ztunnel", "--node", node,
            "--cluster", self.name, "--zds-socket", str(self.paths.zds_socket(node)),
            "--credential-dir", str(self.paths.credential_dir(node)),
            "--control-plane", f"unix:{self.paths.xds_socket}", "--drain-seconds", "5",
            "--admin-port", str(port_base), "--metrics-port", str(port_base + 20),
            "--readiness-port", str(port_base + 21),
        )  # fmt: skip
        await self.wait_ready(node, process)
        return process

    async def wait_ready(self, node: str, process: Process) -> None:
        async with asyncio.timeout(WAIT):
            while True:
                if not process.alive:
                    raise AssertionError(f"{process.name} exited:\n{process.tail()}")
                with contextlib.suppress(OSError):
                    port = self.status_ports[node] + 21
                    status, _ = await http_get(
                        self.nodes[node].netns, "127.0.0.1", port, "/healthz/ready"
                    )
                    if status == 200:
                        return
                await asyncio.sleep(0.1)

    async def ztunnel_dump(self, node: str) -> dict[str, Any]:
        port = self.status_ports[node]
        _, body = await http_get(self.nodes[node].netns, "127.0.0.1", port, "/config_dump")
        return dict(json.loads(body))

    async def ztunnel_metrics(self, node: str) -> str:
        port = self.status_ports[node] + 20
        _, body = await http_get(self.nodes[node].netns, "127.0.0.1", port, "/metrics")
        return body

    async def until_dump(self, check: Callable[[dict[str, Any]], bool], what: str) -> None:
        """Until every ztunnel's configuration satisfies ``check``."""
        async with asyncio.timeout(WAIT):
            while True:
                dumps = [await self.ztunnel_dump(node) for node in self.ztunnels]
                if all(check(dump) for dump in dumps):
                    return
                await asyncio.sleep(0.1)  # another process's state: nothing to wait on
        raise AssertionError(what)

    # ------------------------------------------------------------------ API objects

    async def api_objects(self, *objects: dict[str, Any]) -> None:
        assert self.api is not None
        await self.api.apply(list(objects))

    async def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.namespace_labels[name] = dict(labels or {})
        await self.api_objects(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": labels or {}},
            }
        )

    async def add_pod(
        self,
        name: str,
        node: str,
        *,
        namespace: str = "mesh",
        labels: dict[str, str] | None = None,
        service_account: str = "default",
        app: list[str] | None = None,
        ready: bool = True,
    ) -> Pod:
        """A pod as the runtime makes one: object, network, application, status, capture."""
        assert self.api is not None
        labels = dict(labels or {})
        await self.api_objects(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {
                    "nodeName": node,
                    "serviceAccountName": service_account,
                    "containers": [
                        {
                            "name": "app",
                            "image": "echo",
                            "ports": [
                                {"name": n, "containerPort": p} for n, p in ECHO_PORTS.items()
                            ],
                        }
                    ],
                },
            }
        )
        obj = await self.api.get(POD, name, namespace)
        ip = self.pools[node].allocate(f"{namespace}/{name}")
        network = await self.network.add_pod(self.nodes[node], namespace, name, ip)
        pod = Pod(
            name=name, namespace=namespace, node=node, uid=obj["metadata"]["uid"],
            network=network, labels=labels, service_account=service_account,
        )  # fmt: skip
        self.pods[name] = pod
        await self.enroll(pod)  # before the application starts, as the CNI plugin does
        if app is not None:
            pod.app = await self.spawn(
                f"{namespace}-{name}", pod.netns, "-m", "ambientmesh.apps.echo", "--pod", name, *app
            )
            await self.wait_log(pod.app, "listening")
        await self.set_status(pod, ready=ready)
        return pod

    async def set_status(self, pod: Pod, *, ready: bool) -> None:
        assert self.api is not None
        obj = await self.api.get(POD, pod.name, pod.namespace)
        obj["status"] = {
            "phase": "Running",
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        await self.api.update_status(obj)
        await self.sync_kube_proxy()

    async def enroll(self, pod: Pod) -> str:
        """Tell the node agent about the pod (its current labels); returns the ztunnel state."""
        facts = PodFacts(
            uid=pod.uid, name=pod.name, namespace=pod.namespace,
            service_account=pod.service_account, netns=pod.netns, ips=(pod.ip,),
            labels=pod.labels,
        )  # fmt: skip
        result = await self.agents[pod.node].pod_changed(
            facts, self.namespace_labels.get(pod.namespace, {})
        )
        return result.ztunnel

    async def relabel(self, pod: Pod, labels: dict[str, str]) -> None:
        """Change the pod's labels in the API and re-run enrollment (the app keeps running)."""
        assert self.api is not None
        pod.labels = dict(labels)
        obj = await self.api.get(POD, pod.name, pod.namespace)
        obj["metadata"]["labels"] = dict(labels)
        await self.api.update(obj)
        await self.enroll(pod)

    async def delete_pod(self, pod: Pod) -> None:
        """Kubernetes' order: out of the endpoints, the application stopped, then gone."""
        assert self.api is not None
        await self.set_status(pod, ready=False)
        if pod.app is not None:
            await pod.app.stop()
        await self.agents[pod.node].pod_deleted(pod.uid)
        await self.api.delete(POD, pod.name, pod.namespace)
        await self.network.remove_pod(pod.network)
        self.pods.pop(pod.name, None)
        await self.sync_kube_proxy()

    async def add_waypoint(
        self, node: str, *, namespace: str = "mesh", name: str = "waypoint"
    ) -> Pod:
        """A waypoint Gateway, its pod and the waypoint proxy in it (the runtime's Deployment)."""
        await self.api_objects(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "gatewayClassName": "istio-waypoint",
                    "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
                },
            }
        )
        labels = {
            "gateway.networking.k8s.io/gateway-name": name,
            "gateway.istio.io/managed": "istio.io-mesh-controller",
            "networking.istio.io/tunnel": "http",
            **UNCAPTURED,
        }
        pod = await self.add_pod(
            f"{name}-0", node, namespace=namespace, labels=labels, service_account=name, ready=False
        )
        pod.app = await self.spawn(
            f"{namespace}-{name}-0", pod.netns,
            "-m", "tests.namespaced.ztunnel.commands", "waypoint",
            "--gateway", f"{namespace}/{name}",
            "--pod-name", pod.name, "--pod-namespace", namespace, "--node", node,
            "--service-account", name, "--control-plane", f"unix:{self.paths.xds_socket}",
            "--credential-dir", str(self.paths.credential_dir(node)),
        )  # fmt: skip
        async with asyncio.timeout(WAIT):
            while True:
                with contextlib.suppress(OSError):
                    if (await http_get(pod.netns, pod.ip, 15021, "/healthz/ready"))[0] == 200:
                        break
                if not pod.app.alive:
                    raise AssertionError(f"waypoint exited:\n{pod.app.tail()}")
                await asyncio.sleep(0.1)
        await self.set_status(pod, ready=True)
        return pod

    async def delete_object(self, api_version: str, kind: str, name: str, namespace: str) -> None:
        assert self.api is not None
        await self.api.delete(kinds.lookup(api_version, kind), name, namespace)

    async def service(
        self, name: str, selector: dict[str, str], *, namespace: str = "mesh",
        ports: Iterable[int] = (9000, 9001, 8080, 8081), labels: dict[str, str] | None = None,
    ) -> str:  # fmt: skip
        assert self.api is not None
        await self.api_objects(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
                "spec": {
                    "selector": selector,
                    "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in ports],
                },
            }
        )
        await self.sync_kube_proxy()
        return str((await self.api.get(SERVICE, name, namespace))["spec"]["clusterIP"])

    async def sync_kube_proxy(self) -> None:
        """Every node's kube-proxy table from the Services and ready pods (the runtime's job)."""
        assert self.api is not None
        services = (await self.api.list(SERVICE)).items
        pods = (await self.api.list(POD)).items
        ports = endpoints.service_ports(services, pods)
        for node in self.nodes.values():
            await kubeproxy.apply(ports, node_ip=node.ip, netns=node.netns)

    # ------------------------------------------------------------------ teardown

    async def close(self) -> None:
        for process in reversed(self.processes):
            await process.stop(signal.SIGTERM, grace=5.0)
        for task in self._tasks:
            task.cancel()
        if self.api is not None:
            await self.api.aclose()
        await self.network.teardown()
        if not os.environ.get(KEEP_LOGS):
            shutil.rmtree(self.root, ignore_errors=True)


@contextlib.asynccontextmanager
async def mesh_cluster(nodes: Iterable[str] = ("node-1", "node-2")) -> Any:
    """A running cluster with the given nodes and a ready ztunnel on each; always cleaned up."""
    name = unique_cluster_name("zt")
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    paths = ClusterPaths.for_cluster(
        name,
        {"AMBIENTMESH_RUN_ROOT": str(root / "run"), "AMBIENTMESH_STATE_ROOT": str(root / "state")},
    )
    cluster = MeshCluster(name=name, root=root, paths=paths, network=ClusterNetwork(name))
    try:
        async with asyncio.TaskGroup() as group:
            cluster._group = group
            try:
                await cluster.network.create()
                await cluster.start_control_plane()
                for index, node in enumerate(nodes, start=1):
                    await cluster.add_node(node, index)
                async with asyncio.TaskGroup() as starting:
                    started = {n: starting.create_task(cluster.start_ztunnel(n)) for n in nodes}
                cluster.ztunnels = {n: task.result() for n, task in started.items()}
                yield cluster
            except BaseException:
                for process in cluster.processes:
                    print(f"--- {process.name} (pid {process.pid}) ---\n{process.tail()}")
                raise
            finally:
                await cluster.close()
    finally:
        if os.environ.get(KEEP_LOGS):
            print(f"logs kept in {root / 'logs'}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------- clients in pods


async def connect_in(
    where: str, ip: str | IPv4Address, port: int, deadline: float = 5.0
) -> socket.socket:
    """A TCP connection from inside namespace ``where`` (an application's view)."""
    sock = netns.socket_in(where, socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(deadline):
            await asyncio.get_running_loop().sock_connect(sock, (str(ip), port))
    except BaseException:
        sock.close()
        raise
    return sock


async def greeting(where: str, ip: str, port: int = 9001, deadline: float = 5.0) -> str | None:
    """The first line of the echo app's server-first port, or None if the connection was
    refused, reset or closed first (what a client of a denied connection sees)."""
    try:
        sock = await connect_in(where, ip, port, deadline)
    except (OSError, TimeoutError):
        return None
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            async with asyncio.timeout(deadline):
                line = await reader.readline()
        finally:
            writer.close()
    except (OSError, TimeoutError):
        return None
    return line.decode().strip() or None


async def echo(
    where: str, ip: str, payload: bytes, port: int = 9000, deadline: float = 5.0
) -> bytes | None:
    """Send ``payload`` to the echo port and read it back (None on any failure)."""
    try:
        sock = await connect_in(where, ip, port, deadline)
        reader, writer = await asyncio.open_connection(sock=sock)
    except (OSError, TimeoutError):
        return None
    try:
        async with asyncio.timeout(deadline):
            writer.write(payload)
            writer.write_eof()
            return await reader.read()
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


async def http_get(
    where: str,
    ip: str,
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    deadline: float = 5.0,
) -> tuple[int, str]:
    """A raw HTTP/1.1 GET from inside namespace ``where``: (status, body)."""
    sock = await connect_in(where, ip, port, deadline)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {ip}:{port}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        async with asyncio.timeout(deadline):
            response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace")
