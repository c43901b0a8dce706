"""ZDS end to end over real SOCK_SEQPACKET sockets, with real network namespace fds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ambientmesh.capture.errors import WorkloadRejected
from ambientmesh.capture.netns_fd import NetnsFd
from ambientmesh.capture.seqpacket import SeqpacketChannel, seqpacket_socket
from ambientmesh.capture.sockets import pod_listener
from ambientmesh.capture.zds import PodWorkload, WorkloadInfo, ZdsClient, ZdsPod, ZdsServer
from ambientmesh.capture.zds_messages import (
    AddWorkload,
    KeepWorkload,
    SnapshotSent,
    decode_ack,
    decode_request,
    encode_ack,
    encode_hello,
    encode_request,
)
from ambientmesh.clock import SystemClock
from ambientmesh.errors import ConnectFailed, Unavailable
from ambientmesh.linux import iproute, netns
from ambientmesh.proto import zds_pb2
from tests.namespaced.capture.topology import accept

pytestmark = pytest.mark.root


class Recorder:
    """A WorkloadHandler that binds a real listener inside each pod, as ztunnel would."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.listeners: dict[str, socket.socket] = {}
        self.refuse: set[str] = set()
        self.changed = asyncio.Condition()

    async def start_workload(self, workload: PodWorkload) -> None:
        if workload.uid in self.refuse:
            raise ConnectFailed(f"refusing {workload.uid} for the test")
        self.listeners[workload.uid] = pod_listener(workload.netns, 15001)
        await self._record("start", workload.uid)

    async def stop_workload(self, uid: str) -> None:
        self.listeners.pop(uid).close()
        await self._record("stop", uid)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(predicate)

    def count(self, kind: str, uid: str) -> int:
        return self.events.count((kind, uid))

    async def _record(self, kind: str, uid: str) -> None:
        async with self.changed:
            self.events.append((kind, uid))
            self.changed.notify_all()


@contextlib.asynccontextmanager
async def namespaces(count: int) -> AsyncIterator[list[str]]:
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    names = [f"amzds-{i}-{tag}" for i in range(count)]
    try:
        for name in names:
            netns.create(name)
            await iproute.apply([iproute.LinkUp(dev="lo")], netns=name)
        yield names
    finally:
        for name in names:
            netns.delete(name)


def zds_pod(uid: str, ns: str) -> ZdsPod:
    info = WorkloadInfo(name=f"pod-{uid}", namespace="default", service_account="sa")
    return ZdsPod(uid=uid, info=info, netns_path=f"/run/netns/{ns}")


def new_client(path: Path, handler: Recorder) -> ZdsClient:
    return ZdsClient(
        str(path),
        handler,
        clock=SystemClock(),
        rng=random.Random(7),
        io_timeout=2,
        min_backoff=0.01,
        max_backoff=0.05,
        retry_interval=0.05,
    )


@contextlib.asynccontextmanager
async def running(*coros: Callable[[], object]) -> AsyncIterator[list[asyncio.Task[object]]]:
    """Run background coroutines in a TaskGroup; cancel them on the way out."""
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(make()) for make in coros]  # type: ignore[arg-type]
        try:
            yield tasks
        finally:
            for task in tasks:
                task.cancel()


async def serve(server: ZdsServer, tg: asyncio.TaskGroup) -> asyncio.Task[None]:
    started = asyncio.Event()
    task = tg.create_task(server.serve(started=started))
    async with asyncio.timeout(5):
        await started.wait()
    return task


async def assert_listening_inside(ns: str, port: int, listener: socket.socket) -> None:
    """Connect from inside `ns` to its loopback: only a socket living in `ns` can accept it."""
    probe = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    probe.setblocking(False)
    with probe:
        async with asyncio.timeout(5):
            await asyncio.get_running_loop().sock_connect(probe, ("127.0.0.1", port))
        (await accept(listener)).close()


async def test_snapshot_add_ack_error_retry_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "ztunnel.sock"
    recorder = Recorder()
    async with namespaces(3) as (ns_a, ns_b, ns_c):
        pods = {"a": zds_pod("a", ns_a)}
        server = ZdsServer(str(path), lambda: list(pods.values()), io_timeout=2)
        client = new_client(path, recorder)
        async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
            tasks = [await serve(server, tg), tg.create_task(client.run())]
            await asyncio.wait_for(client.wait_ready(), 5)
            assert recorder.events == [("start", "a")]
            await assert_listening_inside(ns_a, 15001, recorder.listeners["a"])

            pods["b"] = zds_pod("b", ns_b)
            await server.add(pods["b"])  # returns once ztunnel acked
            assert recorder.count("start", "b") == 1
            await assert_listening_inside(ns_b, 15001, recorder.listeners["b"])

            recorder.refuse.add("c")
            pods["c"] = zds_pod("c", ns_c)
            with pytest.raises(WorkloadRejected, match="refusing c"):
                await server.add(pods["c"])
            assert client.pending == {"c"}
            assert not client.ready
            recorder.refuse.clear()  # the client retries pending pods on its own
            await recorder.wait_for(lambda: recorder.count("start", "c") == 1)
            assert client.ready

            await server.delete("b")
            assert recorder.events[-1] == ("stop", "b")
            assert set(client.workloads) == {"a", "c"}
            for task in tasks:
                task.cancel()
        held = list(client.workloads.values())
        await client.stop_all()
        assert all(w.netns.closed for w in held)
        assert len(held) == 2
        assert not recorder.listeners
    assert not path.exists()


async def test_reconnect_replays_the_snapshot_and_drops_stale_pods(tmp_path: Path) -> None:
    path = tmp_path / "ztunnel.sock"
    recorder = Recorder()
    async with namespaces(2) as (ns_a, ns_b):
        pods = {"a": zds_pod("a", ns_a), "b": zds_pod("b", ns_b)}
        client = new_client(path, recorder)
        async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
            client_task = tg.create_task(client.run())
            first = ZdsServer(str(path), lambda: list(pods.values()), io_timeout=2)
            first_task = await serve(first, tg)
            await asyncio.wait_for(client.wait_ready(), 5)
            kept = client.workloads["a"]

            first_task.cancel()  # the agent restarts; pod b is deleted meanwhile
            del pods["b"]
            second = ZdsServer(str(path), lambda: list(pods.values()), io_timeout=2)
            second_task = await serve(second, tg)
            await asyncio.wait_for(second.wait_snapshots(1), 5)

            assert recorder.events == [("start", "a"), ("start", "b"), ("stop", "b")]
            assert client.workloads["a"] is kept
            assert not kept.netns.closed
            assert set(client.workloads) == {"a"}
            assert client.connections == 2
            for task in (client_task, second_task):
                task.cancel()
        await client.stop_all()


async def test_adds_go_to_the_newest_ztunnel_and_deletes_to_all(tmp_path: Path) -> None:
    """As Istio's agent: during a ztunnel restart the new one gets adds, both get deletes."""
    path = tmp_path / "ztunnel.sock"
    old, new = Recorder(), Recorder()
    async with namespaces(2) as (ns_a, ns_b):
        pods = {"a": zds_pod("a", ns_a)}
        server = ZdsServer(str(path), lambda: list(pods.values()), io_timeout=2)
        old_client, new_client_ = new_client(path, old), new_client(path, new)
        async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
            tasks = [await serve(server, tg), tg.create_task(old_client.run())]
            await asyncio.wait_for(old_client.wait_ready(), 5)
            tasks.append(tg.create_task(new_client_.run()))
            await asyncio.wait_for(new_client_.wait_ready(), 5)
            assert server.connections == 2

            pods["b"] = zds_pod("b", ns_b)
            await server.add(pods["b"])
            assert new.count("start", "b") == 1
            assert old.count("start", "b") == 0
            await server.delete("a")
            assert old.events[-1] == ("stop", "a")
            assert new.events[-1] == ("stop", "a")
            for task in tasks:
                task.cancel()
        await old_client.stop_all()
        await new_client_.stop_all()


async def test_agent_without_ztunnel_reports_unavailable(tmp_path: Path) -> None:
    server = ZdsServer(str(tmp_path / "z.sock"), list, io_timeout=1)
    with pytest.raises(Unavailable, match="no ztunnel is connected"):
        await server.add(zds_pod("x", "nowhere"))
    await server.delete("x")  # nobody to tell: not an error


async def test_agent_sends_istio_wire_format_with_exactly_one_netns_fd(tmp_path: Path) -> None:
    """What Istio's ztunnel reads: protobuf WorkloadRequest, one SCM_RIGHTS fd, acked in order."""
    path = tmp_path / "ztunnel.sock"
    async with namespaces(1) as (ns_a,):
        server = ZdsServer(str(path), lambda: [zds_pod("a", ns_a)], io_timeout=2)
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            task = await serve(server, tg)
            ztunnel = await raw_connect(path)
            with contextlib.closing(ztunnel):
                hello = zds_pb2.ZdsHello(version=zds_pb2.V1).SerializeToString()
                await ztunnel.send(hello, within=2)
                add = await ztunnel.recv(within=2, max_fds=1)
                assert len(add.fds) == 1
                with NetnsFd(add.fds[0]) as received:
                    assert received.identity == netns.identity(ns_a)
                message = zds_pb2.WorkloadRequest.FromString(add.data)
                assert message.WhichOneof("payload") == "add"
                assert (message.add.uid, message.add.workload_info.service_account) == ("a", "sa")
                await ztunnel.send(
                    zds_pb2.WorkloadResponse(ack=zds_pb2.Ack()).SerializeToString(), within=2
                )
                done = await ztunnel.recv(within=2)
                assert decode_request(done.data) == SnapshotSent()
                await ztunnel.send(encode_ack(), within=2)
                await asyncio.wait_for(server.wait_snapshots(1), 5)
            task.cancel()


async def test_client_refuses_bad_requests_and_keeps_serving(tmp_path: Path) -> None:
    """A fake agent sends what a broken agent might; every request still gets its ack."""
    path = tmp_path / "agent.sock"
    recorder = Recorder()
    listener = seqpacket_socket()
    listener.bind(str(path))
    listener.listen(1)
    async with namespaces(1) as (ns_a,):
        client = new_client(path, recorder)
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            task = tg.create_task(client.run())
            agent = await raw_accept(listener)
            listener.close()
            with contextlib.closing(agent):
                await misbehave(agent, ns_a)
                assert set(client.workloads) == {"p"}
                assert client.ready
            task.cancel()
        await client.stop_all()


async def misbehave(agent: SeqpacketChannel, ns: str) -> None:
    assert (await agent.recv(within=2)).data == encode_hello()
    info = WorkloadInfo(name="n", namespace="d", service_account="s")
    add = encode_request(AddWorkload(uid="p", info=info))
    read_end, write_end = os.pipe()
    try:
        assert "not a namespace" in await ask(agent, add, (read_end,))
    finally:
        os.close(read_end)
        os.close(write_end)
    assert "exactly one netns fd, got 0" in await ask(agent, add)
    assert "not valid protobuf" in await ask(agent, b"\xff\xff\xff")
    assert await ask(agent, encode_request(KeepWorkload(uid="gone"))) == ""
    assert await ask(agent, encode_request(SnapshotSent())) == ""
    assert "after the snapshot" in await ask(agent, encode_request(KeepWorkload(uid="late")))
    with NetnsFd.open(f"/run/netns/{ns}") as pod_ns:
        assert await ask(agent, add, (pod_ns.fd,)) == ""


async def ask(agent: SeqpacketChannel, data: bytes, fds: tuple[int, ...] = ()) -> str:
    await agent.send(data, fds, within=2)
    return decode_ack((await agent.recv(within=2, max_fds=0)).data)


async def raw_connect(path: Path) -> SeqpacketChannel:
    sock = seqpacket_socket()
    sock.setblocking(True)
    sock.connect(str(path))
    return SeqpacketChannel(sock, max_message=65536)


async def raw_accept(listener: socket.socket) -> SeqpacketChannel:
    listener.setblocking(False)
    async with asyncio.timeout(5):
        sock, _ = await asyncio.get_running_loop().sock_accept(listener)
    return SeqpacketChannel(sock, max_message=65536)
