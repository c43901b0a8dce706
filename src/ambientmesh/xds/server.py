"""The delta ADS server: gRPC streams over a ResourceTable, one Subscription per type per stream.

The control plane calls ``update`` with whatever changed; every open stream that subscribed
to that type is told which names changed and its writer sends just those. Each stream is
authenticated once, when it opens, by an injected callable; a per-peer view decides which
resources that peer may see.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from ambientmesh.errors import IdentityError, InvalidInput, MeshError, NotAuthorized
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest
from ambientmesh.xds.encoding import encode_response
from ambientmesh.xds.subscription import Answer, Push, Received, Subscription
from ambientmesh.xds.table import ResourceTable
from ambientmesh.xds.types import METHOD, SERVICE, Peer

log = logging.getLogger(__name__)

# Pass to grpc.aio.server(options=...): clients keep streams alive with HTTP/2 pings (see
# xds.client.KEEPALIVE_OPTIONS); gRPC's default server policy answers pings more frequent
# than every five minutes with GOAWAY "too_many_pings".
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_ping_strikes", 0),
)

Authenticator = Callable[[grpc.aio.ServicerContext], Peer]
"""Returns who is on the other end of a stream, or raises IdentityError."""


class View(Protocol):
    """Which resources one peer may see."""

    def visible(self, type_url: str, name: str) -> bool: ...


class _Everything:
    def visible(self, type_url: str, name: str) -> bool:
        return True


ViewHook = Callable[[Peer], View]

Observer = Callable[[Peer, str, Received], None]
"""Told about every request a stream receives (type URL and ACK/NACK), e.g. for metrics."""


def everything(peer: Peer) -> View:
    """The default view: every peer sees every resource (istiod does this for ztunnel)."""
    return _Everything()


@dataclass(slots=True)
class ServerStats:
    """Counters for debugging and benchmarks."""

    streams_opened: int = 0
    responses: int = 0
    bytes_sent: int = 0
    resources_sent: int = 0
    acks: int = 0
    nacks: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    """One connected peer, as the debug endpoints show it."""

    peer: Peer
    node_id: str
    subscriptions: Mapping[str, int]  # type URL -> resources held
    in_flight: int


@dataclass(slots=True, eq=False)
class _Stream:
    peer: Peer
    view: View
    nonces: itertools.count[int]
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    node_id: str = ""


class DeltaDiscoveryServer:
    """Serves ``DeltaAggregatedResources``. Register ``rpc_handler()`` on a ``grpc.aio`` server.

    ``type_order`` fixes the order in which one wake-up pushes types (e.g. policies before
    the workloads that name them); other types follow in subscription order.
    """

    def __init__(
        self,
        *,
        authenticate: Authenticator,
        view: ViewHook = everything,
        type_order: Sequence[str] = (),
        max_in_flight: int = 8,
        max_types_per_stream: int = 16,
        write_timeout: float = 60.0,
        observer: Observer | None = None,
        ready: bool = True,
    ) -> None:
        self.table = ResourceTable()
        self.stats = ServerStats()
        self._authenticate = authenticate
        self._view = view
        self._type_order = {url: index for index, url in enumerate(type_order)}
        self._max_in_flight = max_in_flight
        self._max_types = max_types_per_stream
        self._write_timeout = write_timeout
        self._streams: set[_Stream] = set()
        self._observer = observer
        # Streams wait here until the first full computation is in the table, so no proxy
        # is ever told that resources it holds are gone just because we started.
        self.ready = asyncio.Event()
        if ready:
            self.ready.set()

    # ------------------------------------------------------------------ feeding

    def update(
        self,
        type_url: str,
        changes: Mapping[str, Message | None],
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> list[str]:
        """Upsert (message) or delete (None) resources and wake the streams that care.

        Returns the names whose content really changed; unchanged upserts cost nothing
        downstream.
        """
        changed = self.table.apply(type_url, changes, aliases)
        if changed:
            for stream in self._streams:
                subscription = stream.subscriptions.get(type_url)
                if subscription is not None:
                    subscription.mark_changed(changed)
                    stream.wake.set()
        return changed

    def refresh_views(self) -> None:
        """Recompute every stream's view from scratch (call when what a view shows changed)."""
        for stream in self._streams:
            stream.view = self._view(stream.peer)
            for subscription in stream.subscriptions.values():
                subscription.mark_all()
            stream.wake.set()

    def streams(self) -> list[StreamInfo]:
        return [
            StreamInfo(
                peer=stream.peer,
                node_id=stream.node_id,
                subscriptions={url: len(sub.held) for url, sub in stream.subscriptions.items()},
                in_flight=sum(sub.in_flight for sub in stream.subscriptions.values()),
            )
            for stream in self._streams
        ]

    # ------------------------------------------------------------------ gRPC

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The handler to pass to ``server.add_generic_rpc_handlers``."""
        method = grpc.stream_stream_rpc_method_handler(
            self._serve,
            request_deserializer=DeltaDiscoveryRequest.FromString,
            # Responses are assembled as bytes by xds.encoding.
            response_serializer=_bytes_as_is,
        )
        return grpc.method_handlers_generic_handler(SERVICE, {METHOD: method})

    async def _serve(
        self, requests: AsyncIterator[DeltaDiscoveryRequest], context: grpc.aio.ServicerContext
    ) -> None:
        try:
            peer = self._authenticate(context)
        except IdentityError as error:
            log.warning("discovery stream refused: %s", error.message)
            code = grpc.StatusCode.UNAUTHENTICATED
            if isinstance(error, NotAuthorized):
                code = grpc.StatusCode.PERMISSION_DENIED
            await context.abort(code, error.message)
            return
        await self.ready.wait()
        stream = _Stream(peer=peer, view=self._view(peer), nonces=itertools.count(1))
        self._streams.add(stream)
        self.stats.streams_opened += 1
        log.info("discovery stream opened by node %s (%s)", peer.node, peer.identity)
        refusal: _Refused | None = None
        try:
            await self._run_stream(stream, requests, context)
        except* _Refused as group:
            refusal = _first(group)
        finally:
            self._streams.discard(stream)
            log.info("discovery stream of node %s closed", peer.node)
        if refusal is not None:
            log.warning("discovery stream of node %s ended: %s", peer.node, refusal.message)
            await context.abort(refusal.code, refusal.message)

    async def _run_stream(
        self,
        stream: _Stream,
        requests: AsyncIterator[DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(self._write_loop(stream, context))
            try:
                async for request in requests:
                    self._receive(stream, request)
            finally:
                # The client half-closed, or reading failed: either way the stream is over.
                writer.cancel()

    def _receive(self, stream: _Stream, request: DeltaDiscoveryRequest) -> None:
        if not request.type_url:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "request without type_url")
        if request.HasField("node") and not stream.node_id:
            stream.node_id = request.node.id
        subscription = stream.subscriptions.get(request.type_url)
        if subscription is None:
            if len(stream.subscriptions) >= self._max_types:
                raise _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many resource types")
            subscription = Subscription(request.type_url, max_in_flight=self._max_in_flight)
            stream.subscriptions[request.type_url] = subscription
        try:
            received = subscription.on_request(request)
        except InvalidInput as error:
            raise _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED, error.message) from error
        if received.answer is Answer.ACK:
            self.stats.acks += 1
        elif received.answer is Answer.NACK:
            self.stats.nacks += 1
            log.warning(
                "node %s rejected %s response %s (%s): %s; not resending until they change",
                stream.peer.node,
                request.type_url,
                received.nonce,
                ", ".join(received.rejected) or "no resources",
                received.error,
            )
        if self._observer is not None:
            self._observer(stream.peer, request.type_url, received)
        stream.wake.set()

    async def _write_loop(self, stream: _Stream, context: grpc.aio.ServicerContext) -> None:
        while True:
            await stream.wake.wait()
            stream.wake.clear()
            for push, type_url in self._plan(stream):
                await self._send(stream, context, type_url, push)

    def _plan(self, stream: _Stream) -> list[tuple[Push, str]]:
        ordered = sorted(
            stream.subscriptions.items(), key=lambda item: self._type_order.get(item[0], 1 << 30)
        )
        pushes: list[tuple[Push, str]] = []
        for type_url, subscription in ordered:
            visible = functools.partial(stream.view.visible, type_url)
            nonce = str(next(stream.nonces))
            push = subscription.plan(self.table.entries(type_url), visible, nonce)
            if push is not None:
                pushes.append((push, type_url))
        return pushes

    async def _send(
        self, stream: _Stream, context: grpc.aio.ServicerContext, type_url: str, push: Push
    ) -> None:
        data = encode_response(
            system_version=self.table.system_version(type_url),
            type_url=type_url,
            nonce=push.nonce,
            resources=[entry.encoded for entry in push.resources],
            removed=push.removed,
        )
        try:
            async with asyncio.timeout(self._write_timeout):
                await context.write(data)
        except TimeoutError as error:
            raise _Refused(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"node {stream.peer.node} did not read a response within {self._write_timeout}s",
            ) from error
        self.stats.responses += 1
        self.stats.bytes_sent += len(data)
        self.stats.resources_sent += len(push.resources)


class _Refused(MeshError):
    """End the stream with this gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _first(group: BaseExceptionGroup[_Refused]) -> _Refused:
    leaf = group.exceptions[0]
    return _first(leaf) if isinstance(leaf, BaseExceptionGroup) else leaf


def _bytes_as_is(data: Any) -> bytes:
    return bytes(data)
