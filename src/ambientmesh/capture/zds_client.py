"""ztunnel's end of ZDS: connect to the node agent, get pod namespaces, start and stop proxies."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ambientmesh.backoff import Backoff, Retry
from ambientmesh.capture.errors import NotANetworkNamespace
from ambientmesh.capture.netns_fd import NetnsFd
from ambientmesh.capture.seqpacket import Datagram, SeqpacketChannel, seqpacket_socket
from ambientmesh.capture.zds_messages import (
    MAX_MESSAGE_BYTES,
    AddWorkload,
    DelWorkload,
    KeepWorkload,
    WorkloadInfo,
    decode_request,
    encode_ack,
    encode_hello,
)
from ambientmesh.capture.zds_state import StartProxy, Step, StopProxy, WorkloadTracker
from ambientmesh.clock import Clock
from ambientmesh.errors import (
    ConnectFailed,
    MeshError,
    RemoteProtocolError,
    StreamError,
    UpstreamTimeout,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodWorkload:
    """A pod ztunnel must proxy for. The client owns `netns` and closes it after `stop_workload`."""

    uid: str
    info: WorkloadInfo
    netns: NetnsFd


class WorkloadHandler(Protocol):
    """What ztunnel does with pods; raising MeshError or OSError refuses, and ZDS acks the error."""

    async def start_workload(self, workload: PodWorkload) -> None: ...

    async def stop_workload(self, uid: str) -> None: ...


class ZdsClient:
    """Keeps a connection to the node agent, reconnecting with jittered exponential backoff.

    Every request is handled in order and acknowledged; a pod whose start failed is retried
    every `retry_interval` seconds. `ready` turns true after the first complete snapshot with
    nothing pending, and stays true across reconnects (as ztunnel's readiness does).
    """

    def __init__(
        self,
        path: str,
        handler: WorkloadHandler,
        *,
        clock: Clock,
        rng: random.Random,
        io_timeout: float = 5.0,
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        retry_interval: float = 5.0,
    ) -> None:
        self._path = path
        self._handler = handler
        self._clock = clock
        self._rng = rng
        self._io_timeout = io_timeout
        self._backoff = Backoff(initial=min_backoff, maximum=max_backoff, jitter=0.25)
        self._retry_interval = retry_interval
        self._tracker = WorkloadTracker()
        self._workloads: dict[str, PodWorkload] = {}
        self._pending: dict[str, PodWorkload] = {}
        self._mutex = asyncio.Lock()
        self._ready = asyncio.Event()
        self._connected = False
        self.connections = 0

    @property
    def ready(self) -> bool:
        return self._tracker.ready

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def workloads(self) -> Mapping[str, PodWorkload]:
        """Pods whose proxies are running, by uid."""
        return dict(self._workloads)

    @property
    def pending(self) -> frozenset[str]:
        return self._tracker.pending

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self) -> None:
        """Connect, serve, reconnect; until cancelled. Proxies keep running across reconnects."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._retry_pending_forever())
            await self._connect_forever()

    async def stop_all(self) -> None:
        """Stop every proxy this client started and release every namespace it holds."""
        async with self._mutex:
            for uid in list(self._workloads):
                await self._stop(uid)
            for workload in self._pending.values():
                workload.netns.close()
            self._pending.clear()
            self._tracker = WorkloadTracker()

    # ------------------------------------------------------------ connection

    async def _connect_forever(self) -> None:
        retry = Retry(self._backoff, self._rng)
        while True:
            try:
                channel = await self._connect()
            except (ConnectFailed, UpstreamTimeout) as exc:
                log.debug("ZDS: %s", exc.message)
                await self._clock.sleep(retry.next_delay())
                continue
            try:
                await self._session(channel)
            except (StreamError, RemoteProtocolError, UpstreamTimeout) as exc:
                log.warning("ZDS connection to %s ended: %s", self._path, exc.message)
            finally:
                self._connected = False
                channel.close()
            retry.reset()
            # Pause as after a first failure, so an agent that accepts and hangs up at once
            # cannot make this loop spin.
            await self._clock.sleep(self._backoff.delay(1, self._rng))

    async def _connect(self) -> SeqpacketChannel:
        sock = seqpacket_socket()
        try:
            sock.connect(self._path)
        except BlockingIOError:
            await self._finish_connect(sock)
        except OSError as exc:
            sock.close()
            raise ConnectFailed(
                f"cannot connect to the node agent at {self._path}: {exc.strerror}"
            ) from exc
        return SeqpacketChannel(sock, max_message=MAX_MESSAGE_BYTES)

    async def _finish_connect(self, sock: socket.socket) -> None:
        channel = SeqpacketChannel(sock, max_message=MAX_MESSAGE_BYTES)
        try:
            async with asyncio.timeout(self._io_timeout):
                await channel.wait_writable()
        except TimeoutError as exc:
            sock.close()
            raise UpstreamTimeout(
                f"connecting to the node agent at {self._path} timed out"
            ) from exc
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            sock.close()
            raise ConnectFailed(
                f"cannot connect to the node agent at {self._path}: {os.strerror(error)}"
            )

    async def _session(self, channel: SeqpacketChannel) -> None:
        async with self._mutex:
            self._tracker.connection_started()
        await channel.send(encode_hello(), within=self._io_timeout)
        self._connected = True
        self.connections += 1
        log.info("ZDS: connected to the node agent at %s", self._path)
        while True:
            # The agent speaks only when it has news, so an idle wait has no deadline;
            # a dead agent shows up at once as end of stream.
            datagram = await channel.recv(within=None, max_fds=1)
            async with self._mutex:
                error = await self._dispatch(datagram)
                self._sync_pending()
                if self._tracker.ready:
                    self._ready.set()
            await channel.send(encode_ack(error), within=self._io_timeout)

    # ------------------------------------------------------------ requests

    async def _dispatch(self, datagram: Datagram) -> str:
        try:
            request = decode_request(datagram.data)
        except RemoteProtocolError as exc:
            datagram.close_fds()
            return exc.message
        if isinstance(request, AddWorkload):
            return await self._add(request, datagram.fds)
        datagram.close_fds()
        if datagram.fds:
            return f"ZDS {type(request).__name__} must not carry file descriptors"
        try:
            if isinstance(request, KeepWorkload):
                self._tracker.keep(request.uid)
                return ""
            if isinstance(request, DelWorkload):
                return await self._run(self._tracker.delete(request.uid), None)
            return await self._run(self._tracker.snapshot_sent(), None)
        except RemoteProtocolError as exc:
            return exc.message

    async def _add(self, request: AddWorkload, fds: tuple[int, ...]) -> str:
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return f"ZDS add for {request.uid} must carry exactly one netns fd, got {len(fds)}"
        try:
            netns = NetnsFd(fds[0])
        except NotANetworkNamespace as exc:
            os.close(fds[0])
            return f"ZDS add for {request.uid}: {exc.message}"
        workload = PodWorkload(uid=request.uid, info=request.info, netns=netns)
        steps = self._tracker.add(request.uid, netns.identity)
        if not steps:
            netns.close()  # already proxied in this very namespace
            return ""
        return await self._run(steps, workload)

    async def _run(self, steps: tuple[Step, ...], workload: PodWorkload | None) -> str:
        error = ""
        for step in steps:
            if isinstance(step, StopProxy):
                await self._stop(step.uid)
            elif isinstance(step, StartProxy) and workload is not None:
                error = await self._start(workload)
        return error

    async def _start(self, workload: PodWorkload) -> str:
        try:
            await self._handler.start_workload(workload)
        except (MeshError, OSError) as exc:
            reason = exc.message if isinstance(exc, MeshError) else str(exc)
            log.warning(
                "ZDS: starting the proxy for pod %s failed, will retry: %s", workload.uid, reason
            )
            self._tracker.failed(workload.uid)
            previous = self._pending.pop(workload.uid, None)
            if previous is not None and previous is not workload:
                previous.netns.close()
            self._pending[workload.uid] = workload
            return f"starting the proxy for pod {workload.uid} failed: {reason}"
        self._tracker.started(workload.uid, workload.netns.identity)
        self._workloads[workload.uid] = workload
        return ""

    async def _stop(self, uid: str) -> None:
        workload = self._workloads.pop(uid, None)
        try:
            await self._handler.stop_workload(uid)
        except (MeshError, OSError) as exc:
            log.warning("ZDS: stopping the proxy for pod %s failed: %s", uid, exc)
        finally:
            if workload is not None:
                workload.netns.close()

    def _sync_pending(self) -> None:
        keep = self._tracker.pending
        for uid in [uid for uid in self._pending if uid not in keep]:
            workload = self._pending.pop(uid)
            if self._workloads.get(uid) is not workload:
                workload.netns.close()

    async def _retry_pending_forever(self) -> None:
        while True:
            await self._clock.sleep(self._retry_interval)
            async with self._mutex:
                for workload in list(self._pending.values()):
                    await self._run(
                        self._tracker.add(workload.uid, workload.netns.identity), workload
                    )
                self._sync_pending()
                if self._tracker.ready:
                    self._ready.set()
