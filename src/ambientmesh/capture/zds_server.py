"""The node agent's end of ZDS: serve ztunnels, replay the snapshot, send adds and deletes.

As Istio's agent does, adds go to the newest connection (a restarted ztunnel takes over while
the old one drains) and deletes go to every connection. Each connection has one worker task
that owns its socket, so requests and acks never interleave.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ambientmesh.capture.errors import NotANetworkNamespace, WorkloadRejected
from ambientmesh.capture.netns_fd import NetnsFd
from ambientmesh.capture.seqpacket import (
    SeqpacketChannel,
    seqpacket_socket,
    set_once,
    wait_fd,
)
from ambientmesh.capture.zds_messages import (
    MAX_MESSAGE_BYTES,
    AddWorkload,
    DelWorkload,
    KeepWorkload,
    Request,
    SnapshotSent,
    WorkloadInfo,
    decode_ack,
    decode_hello,
)
from ambientmesh.capture.zds_messages import encode_request as _encode
from ambientmesh.errors import (
    MeshError,
    RemoteProtocolError,
    ResourceBroken,
    StreamError,
    Unavailable,
    UpstreamTimeout,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZdsPod:
    """A pod as the agent tells ztunnel about it; the namespace is opened only while sending."""

    uid: str
    info: WorkloadInfo
    netns_path: str


@dataclass(slots=True)
class _Job:
    request: Request
    pod: ZdsPod | None
    done: asyncio.Future[None]


class _Connection:
    __slots__ = ("channel", "jobs", "wakeup")

    def __init__(self, channel: SeqpacketChannel) -> None:
        self.channel = channel
        self.jobs: collections.deque[_Job] = collections.deque()
        self.wakeup: asyncio.Future[None] | None = None

    def submit(self, job: _Job) -> None:
        self.jobs.append(job)
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)


class ZdsServer:
    """Listens on `path`; `snapshot()` returns every pod ztunnel should proxy right now."""

    def __init__(
        self,
        path: str,
        snapshot: Callable[[], Iterable[ZdsPod]],
        *,
        io_timeout: float = 5.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._path = path
        self._snapshot = snapshot
        self._io_timeout = io_timeout
        self._request_timeout = request_timeout
        self._conns: list[_Connection] = []
        self._changed = asyncio.Condition()
        self.snapshots_sent = 0

    @property
    def path(self) -> str:
        return self._path

    @property
    def connections(self) -> int:
        return len(self._conns)

    async def wait_snapshots(self, count: int) -> None:
        """Wait until `count` snapshots in total have been delivered and acknowledged."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.snapshots_sent >= count)

    async def serve(self, *, started: asyncio.Event | None = None) -> None:
        """Accept ztunnel connections until cancelled; removes the socket file on the way out."""
        listener = self._bind()
        bound = os.stat(self._path).st_ino
        try:
            async with asyncio.TaskGroup() as tg:
                if started is not None:
                    started.set()
                while True:
                    sock = await _accept(listener)
                    conn = _Connection(SeqpacketChannel(sock, max_message=MAX_MESSAGE_BYTES))
                    # Registered now, so adds from here on queue behind this connection's snapshot.
                    self._conns.append(conn)
                    tg.create_task(self._serve_connection(conn))
        finally:
            listener.close()
            for conn in self._conns:
                conn.channel.close()
            with contextlib.suppress(FileNotFoundError):
                # Only our own socket file: a newer agent may already have bound the path.
                if os.lstat(self._path).st_ino == bound:
                    os.unlink(self._path)

    async def add(self, pod: ZdsPod) -> None:
        """Hand `pod` to the newest ztunnel; Unavailable when none is connected."""
        if not self._conns:
            raise Unavailable(f"no ztunnel is connected to the node agent at {self._path}")
        request = AddWorkload(uid=pod.uid, info=pod.info)
        await self._submit(self._conns[-1], request, pod)

    async def delete(self, uid: str) -> None:
        """Tell every ztunnel to drop the pod; raise the first failure, having tried them all."""
        failures: list[MeshError] = []
        for conn in list(self._conns):
            try:
                await self._submit(conn, DelWorkload(uid=uid), None)
            except MeshError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    # ------------------------------------------------------------ internals

    def _bind(self) -> socket.socket:
        os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self._path).st_mode):
                os.unlink(self._path)  # left over from a previous agent
        sock = seqpacket_socket()
        try:
            sock.bind(self._path)
            os.chmod(self._path, 0o600)
            sock.listen(8)
        except OSError as exc:
            sock.close()
            raise Unavailable(f"cannot listen for ztunnel on {self._path}: {exc.strerror}") from exc
        return sock

    async def _submit(self, conn: _Connection, request: Request, pod: ZdsPod | None) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        conn.submit(_Job(request=request, pod=pod, done=done))
        try:
            async with asyncio.timeout(self._request_timeout):
                await done
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"ztunnel did not acknowledge {type(request).__name__} in time"
            ) from exc

    async def _serve_connection(self, conn: _Connection) -> None:
        try:
            hello = await conn.channel.recv(within=self._io_timeout, max_fds=0)
            decode_hello(hello.data)
            await self._send_snapshot(conn)
            while True:
                if conn.jobs:
                    await self._run_job(conn, conn.jobs.popleft())
                else:
                    await self._idle(conn)
        except (StreamError, RemoteProtocolError, UpstreamTimeout) as exc:
            log.warning("ZDS: ztunnel connection ended: %s", exc.message)
        finally:
            self._conns.remove(conn)
            conn.channel.close()
            for job in conn.jobs:
                _fail(job.done, ResourceBroken("ztunnel disconnected before the request was sent"))
            conn.jobs.clear()

    async def _send_snapshot(self, conn: _Connection) -> None:
        for pod in list(self._snapshot()):
            try:
                netns: NetnsFd | None = NetnsFd.open(pod.netns_path)
                request: Request = AddWorkload(uid=pod.uid, info=pod.info)
            except NotANetworkNamespace as exc:
                log.warning("ZDS: sending keep for pod %s: %s", pod.uid, exc.message)
                netns, request = None, KeepWorkload(uid=pod.uid)
            error = await self._exchange(conn, request, netns)
            if error:
                log.warning("ZDS: ztunnel refused pod %s in the snapshot: %s", pod.uid, error)
        error = await self._exchange(conn, SnapshotSent(), None)
        if error:
            log.warning("ZDS: ztunnel refused snapshot_sent: %s", error)
        async with self._changed:
            self.snapshots_sent += 1
            self._changed.notify_all()

    async def _run_job(self, conn: _Connection, job: _Job) -> None:
        if job.done.done():  # the caller gave up waiting
            return
        try:
            netns = NetnsFd.open(job.pod.netns_path) if job.pod is not None else None
        except NotANetworkNamespace as exc:
            _fail(job.done, exc)
            return
        try:
            error = await self._exchange(conn, job.request, netns)
        except MeshError as exc:
            _fail(job.done, exc)
            raise
        if error:
            _fail(
                job.done, WorkloadRejected(f"ztunnel refused {type(job.request).__name__}: {error}")
            )
        elif not job.done.done():
            job.done.set_result(None)

    async def _exchange(self, conn: _Connection, request: Request, netns: NetnsFd | None) -> str:
        """Send one request (with the namespace fd, if any) and return the ack's error text."""
        try:
            fds = (netns.fd,) if netns is not None else ()
            await conn.channel.send(_encode(request), fds, within=self._io_timeout)
        finally:
            if netns is not None:
                netns.close()
        reply = await conn.channel.recv(within=self._io_timeout, max_fds=0)
        return decode_ack(reply.data)

    async def _idle(self, conn: _Connection) -> None:
        """Wait for work or for the peer to go away; ztunnel never speaks unasked."""
        loop = asyncio.get_running_loop()
        fd = conn.channel.fileno()
        readable: asyncio.Future[None] = loop.create_future()
        conn.wakeup = loop.create_future()
        loop.add_reader(fd, set_once, readable)
        try:
            await asyncio.wait((readable, conn.wakeup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Synchronously, before anyone else watches this fd for an ack.
            loop.remove_reader(fd)
            readable.cancel()
            conn.wakeup.cancel()
            conn.wakeup = None
        if conn.jobs:
            return
        datagram = await conn.channel.recv(within=self._io_timeout, max_fds=0)
        raise RemoteProtocolError(
            f"ztunnel sent an unsolicited message of {len(datagram.data)} bytes"
        )


async def _accept(listener: socket.socket) -> socket.socket:
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            await wait_fd(listener.fileno(), readable=True)
            continue
        sock.setblocking(False)
        return sock


def _fail(future: asyncio.Future[None], exc: MeshError) -> None:
    if not future.done():
        future.set_exception(exc)
