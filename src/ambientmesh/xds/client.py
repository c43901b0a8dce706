"""The delta ADS client: keeps one stream to the control plane open, reconnecting with backoff.

What was applied stays applied when the control plane goes away (static stability: a proxy
keeps serving with its last good configuration); on reconnect the session tells the server
which versions it holds and gets only what changed.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from ambientmesh.backoff import Backoff, Retry
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError, ResourceBroken
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest, DeltaDiscoveryResponse
from ambientmesh.xds.session import ClientSession, Watch
from ambientmesh.xds.types import METHOD_PATH

log = logging.getLogger(__name__)

ChannelFactory = Callable[[], grpc.aio.Channel]
"""Opens a channel to the control plane (called on every reconnect, inside the event loop)."""

# Waiting for the next push has no natural deadline (nothing may change for hours); a dead
# peer is detected by HTTP/2 keepalive pings instead. Pass these to the channel.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

# Jitter keeps a fleet of proxies that lost the control plane together from reconnecting in
# lockstep; the schedule restarts once a stream made progress.
RECONNECT_BACKOFF = Backoff(initial=0.5, maximum=30.0, jitter=0.2)


@dataclass(slots=True)
class ClientStats:
    streams: int = 0
    responses: int = 0
    nacks: int = 0
    last_error: str = ""


class DeltaDiscoveryClient:
    """Subscribes to every watched type and applies what the server pushes.

    ``synced`` is set once the first response of every type was processed, and stays set
    across reconnects. ``run`` returns only when cancelled.
    """

    def __init__(
        self,
        *,
        connect: ChannelFactory,
        node: Node,
        watches: Sequence[Watch[Any]],
        clock: Clock,
        rng: random.Random,
        backoff: Backoff = RECONNECT_BACKOFF,
        first_response_timeout: float = 15.0,
        write_timeout: float = 10.0,
    ) -> None:
        self.session = ClientSession(node, watches)
        self.synced = asyncio.Event()
        self.stats = ClientStats()
        self.connected = False
        self._connect = connect
        self._clock = clock
        self._retry = Retry(backoff, rng)
        self._first_response_timeout = first_response_timeout
        self._write_timeout = write_timeout

    async def run(self) -> None:
        while True:
            try:
                await self._stream_once()
                problem = "the control plane closed the stream"
            except grpc.aio.AioRpcError as error:
                problem = f"{error.code().name}: {error.details()}"
            except (MeshError, TimeoutError, OSError) as error:
                problem = getattr(error, "message", None) or repr(error)
            self.connected = False
            self.stats.last_error = problem
            delay = self._retry.next_delay()
            log.warning("discovery stream lost (%s); reconnecting in %.2fs", problem, delay)
            await self._clock.sleep(delay)

    async def _stream_once(self) -> None:
        async with self._connect() as channel:
            call = channel.stream_stream(
                METHOD_PATH,
                request_serializer=DeltaDiscoveryRequest.SerializeToString,
                response_deserializer=DeltaDiscoveryResponse.FromString,
            )()
            try:
                self.stats.streams += 1
                for request in self.session.opening_requests():
                    await self._write(call, request)
                async with asyncio.timeout(self._first_response_timeout):
                    first = await call.read()
                await self._handle(call, first)
                while True:
                    await self._handle(call, await call.read())
            finally:
                call.cancel()

    async def _handle(self, call: grpc.aio.StreamStreamCall, response: Any) -> None:
        if response is grpc.aio.EOF:
            raise ResourceBroken("the control plane ended the discovery stream")
        self.connected = True
        self.stats.responses += 1
        reply = self.session.receive(response)
        if not reply.accepted:
            self.stats.nacks += 1
            log.warning("rejected %s update: %s", reply.type_url, reply.error)
        await self._write(call, reply.request)
        if self.session.synced:
            self.synced.set()
        self._retry.reset()

    async def _write(self, call: grpc.aio.StreamStreamCall, request: DeltaDiscoveryRequest) -> None:
        async with asyncio.timeout(self._write_timeout):
            await call.write(request)
