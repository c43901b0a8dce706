"""Readiness probes of each kind, run from inside the pod's namespace, flip readiness."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ambientmesh.linux import netns
from ambientmesh.runtime.network import PodNetwork
from ambientmesh.runtime.prober import ProbeTarget, ReadinessProber, check
from ambientmesh.runtime.probes import Exec, HttpGet, Probe, TcpSocket
from ambientmesh.testing.clock import FakeClock
from tests.namespaced.conftest import DEADLINE, Cluster, whoami_server

pytestmark = pytest.mark.root


def target(pod: PodNetwork) -> ProbeTarget:
    return ProbeTarget(netns=pod.netns, ip=pod.ip, env={"PATH": "/usr/bin:/bin"})


@asynccontextmanager
async def probing(probe: Probe, pod: PodNetwork) -> AsyncIterator[ReadinessProber]:
    prober = ReadinessProber(probe, target(pod), clock=FakeClock(autojump=True))
    async with asyncio.TaskGroup() as group:
        task = group.create_task(prober.run())
        try:
            yield prober
        finally:
            task.cancel()


async def until(prober: ReadinessProber, ready: bool) -> None:
    async with asyncio.timeout(DEADLINE):
        await prober.wait_until(ready)


async def test_tcp_socket_probe_follows_the_listener(cluster: Cluster) -> None:
    a1 = cluster.pods["a1"]
    probe = Probe(action=TcpSocket(port=7000), period=1, failure_threshold=2)
    async with probing(probe, a1) as prober:
        assert not prober.ready  # not ready before the first success, as in Kubernetes
        async with whoami_server(a1.netns, a1.ip, 7000, "a1"):
            await until(prober, True)
        await until(prober, False)


class HttpApp:
    """A tiny HTTP server in a pod that answers with `status` and remembers request heads."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@asynccontextmanager
async def http_app(pod: PodNetwork, port: int) -> AsyncIterator[HttpApp]:
    app = HttpApp()
    sock = netns.socket_in(pod.netns, socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((str(pod.ip), port))
    sock.listen()
    sock.setblocking(False)
    server = await asyncio.start_server(app.handle, sock=sock)
    async with server:
        yield app


async def test_http_get_probe_sends_headers_and_follows_the_status(cluster: Cluster) -> None:
    b1 = cluster.pods["b1"]
    action = HttpGet(port=8080, path="/healthz", headers=(("X-Probe", "yes"),))
    probe = Probe(action=action, period=1, failure_threshold=1)
    async with http_app(b1, 8080) as app, probing(probe, b1) as prober:
        await until(prober, True)
        app.status = 503
        await until(prober, False)
        app.status = 302  # 200 <= status < 400 is success
        await until(prober, True)
    head = app.requests[0].decode()
    assert head.startswith("GET /healthz HTTP/1.1\r\n")
    assert f"Host: {b1.ip}:8080" in head
    assert "X-Probe: yes" in head


async def test_exec_probe_runs_in_the_pod(cluster: Cluster, tmp_path: Path) -> None:
    flag = tmp_path / "ok"
    a2 = cluster.pods["a2"]
    probe = Probe(action=Exec(command=("test", "-f", str(flag))), period=1, failure_threshold=1)
    async with probing(probe, a2) as prober:
        flag.touch()
        await until(prober, True)
        flag.unlink()
        await until(prober, False)
    # And it really runs inside the pod: the pod's address is on its eth0.
    inside = Probe(
        action=Exec(command=("sh", "-c", f"ip -4 -o address show dev eth0 | grep -q {a2.ip}/32"))
    )
    assert (await check(inside, target(a2))).success


async def test_a_probe_that_gets_no_answer_times_out(cluster: Cluster) -> None:
    a1 = cluster.pods["a1"]
    sock = netns.socket_in(a1.netns, socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.bind((str(a1.ip), 7001))
        sock.listen()  # accepts (in the kernel) but never answers
        result = await check(Probe(action=HttpGet(port=7001), timeout=0.2), target(a1))
    assert not result.success
    assert "timed out" in result.detail
