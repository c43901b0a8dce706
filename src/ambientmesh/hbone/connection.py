"""An HBONE connection: the protocol core driven by a TLS transport, with keepalive and drain.

The connection reads into the thread's shared buffer and hands every DATA piece to its
stream before returning, so nothing is copied on the way in unless a stream's socket is
backed up. All writes go out through ``flush`` at the end of each callback.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from ambientmesh.clock import Clock
from ambientmesh.errors import ResourceBroken, UpstreamTimeout
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.hbone.errors import TunnelRefused
from ambientmesh.hbone.stream import TunnelStream
from ambientmesh.hbone.timing import wait_until
from ambientmesh.identity.spiffe import Identity
from ambientmesh.io.relay import shared_read_buffer
from ambientmesh.protocol import (
    ClientConnection,
    ConnectionTerminated,
    DataReceived,
    ErrorCode,
    Event,
    GoAwayReceived,
    H2Settings,
    PingAcknowledged,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    Role,
    ServerConnection,
    SettingsChanged,
    StreamEnded,
    StreamReset,
    TunnelConnection,
    WindowUpdated,
)

log = logging.getLogger(__name__)

RequestCallback = Callable[[TunnelStream, RequestReceived], object]
_TLS_WRITE_HIGH_WATER = 1024 * 1024
_ping_ids = itertools.count(1)


class HboneConnection(asyncio.BufferedProtocol):
    """One TLS connection carrying CONNECT streams (either role)."""

    def __init__(
        self,
        *,
        role: Role,
        config: HboneConfig,
        clock: Clock,
        settings: H2Settings | None = None,
        on_request: RequestCallback | None = None,
    ) -> None:
        if settings is None:
            settings = config.client_settings if role is Role.CLIENT else config.server_settings
        core = ClientConnection if role is Role.CLIENT else ServerConnection
        self.core: TunnelConnection = core(settings=settings)
        self.core.initiate()
        # A server says nothing, not even SETTINGS, until the client's identity is checked.
        self._muted = role is Role.SERVER
        self.config = config
        self.clock = clock
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, TunnelStream] = {}
        self.write_paused = False
        self.write_blocked: set[TunnelStream] = set()  # paused by TLS backpressure
        self.window_blocked: set[TunnelStream] = set()  # waiting for flow-control window
        self.peer_identity: Identity | None = None
        self.extra: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[bool] = loop.create_future()  # peer SETTINGS arrived
        # Server: the client's identity was checked; requests wait for it (True) or die.
        self.verified: asyncio.Future[bool] = loop.create_future()
        self.maintenance: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self.last_received = clock.monotonic()
        self.idle_since = clock.monotonic()
        self._idle_waiter: asyncio.Future[object] | None = None
        self._on_request = on_request
        self._buffer = shared_read_buffer()
        self._handlers: dict[type, Callable[[Any], None]] = {
            DataReceived: self._on_data,
            StreamEnded: self._on_stream_ended,
            StreamReset: self._on_stream_reset,
            ResponseReceived: self._on_response,
            RequestReceived: self._on_request_received,
            RequestRejected: self._on_request_rejected,
            WindowUpdated: self._on_window_updated,
            SettingsChanged: self._on_settings,
            PingAcknowledged: _ignore,
            GoAwayReceived: self._on_goaway,
            ConnectionTerminated: self._on_terminated,
        }

    # ================================================================== state

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    @property
    def usable(self) -> bool:
        """Client: may carry a new stream (open, not draining, below both stream limits)."""
        return (
            not self.closed.done()
            and self.core.accepting_streams
            and len(self.streams) < self.config.max_streams_per_connection
        )

    # ================================================================== asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_TLS_WRITE_HIGH_WATER)
        self.flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.last_received = self.clock.monotonic()
        handlers = self._handlers
        for event in self.core.receive_data(self._buffer[:nbytes]):
            handlers[type(event)](event)
        self.flush()

    def eof_received(self) -> bool:
        return False  # the peer is gone: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        error = ResourceBroken(f"HBONE connection closed{f': {exc}' if exc else ''}")
        for stream in list(self.streams.values()):
            stream._connection_lost(error)
        for future in (self.ready, self.verified, self.closed):
            if not future.done():
                future.set_result(None if future is self.closed else False)  # type: ignore[arg-type]
        if self.maintenance is not None:
            self.maintenance.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        blocked, self.write_blocked = self.write_blocked, set()
        for stream in blocked:
            stream._writing_resumed()

    # ================================================================== actions

    def unmute(self) -> None:
        """Server: the client is verified; send what was held back (our SETTINGS first)."""
        self._muted = False
        self.flush()

    def flush(self) -> None:
        if self._muted:
            return
        out = self.core.data_to_send()
        transport = self.transport
        if not out or transport is None or transport.is_closing():
            return
        if len(out) == 1:
            transport.write(out[0])
        else:
            transport.writelines(out)

    def open_stream(self, authority: str, headers: Iterable[tuple[str, str]] = ()) -> TunnelStream:
        """Client: send a CONNECT; the stream's ``response`` future resolves with the answer."""
        stream_id = self.core.open_stream(authority, headers)
        stream = self._new_stream(stream_id, {"authority": authority})
        stream.response = asyncio.get_running_loop().create_future()
        self.flush()
        return stream

    async def request(
        self, authority: str, headers: Iterable[tuple[str, str]] = ()
    ) -> tuple[TunnelStream, ResponseReceived]:
        """Client: CONNECT and wait for a 2xx; TunnelRefused, StreamRefused or UpstreamTimeout."""
        stream = self.open_stream(authority, headers)
        assert stream.response is not None
        if not await wait_until(stream.response, self.clock, self.config.response_timeout):
            stream.reset(ErrorCode.CANCEL)
            raise UpstreamTimeout(
                f"no response to CONNECT {authority} in {self.config.response_timeout:g}s"
            )
        response = stream.response.result()
        if not 200 <= response.status < 300:
            stream.reset(ErrorCode.CANCEL)
            raise TunnelRefused(
                f"CONNECT {authority} was answered with HTTP {response.status}",
                status=response.status,
            )
        return stream, response

    def goaway(self) -> None:
        self.core.goaway()
        self.flush()

    async def drain(self, grace: float) -> bool:
        """GOAWAY, wait for open streams up to ``grace`` seconds, then close; True if none
        was cut short."""
        self.goaway()
        idle: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._when_idle(idle)
        finished = await wait_until(idle, self.clock, grace)
        self.close()
        return finished

    def close(self) -> None:
        """Close now: open streams are broken (their sockets are reset)."""
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now (no GOAWAY); a no-op once it is closed."""
        if self.transport is not None and not self.closed.done():
            self.transport.abort()

    async def maintain(self, *, idle_timeout: float | None = None) -> None:
        """Keepalive for the connection's life: PING every interval, drop it once silent for
        the timeout, and (pooled clients) close it after ``idle_timeout`` without streams.
        Idle time is checked once per interval, so release happens within one interval."""
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        while not self.closed.done():
            await self.clock.sleep(interval)
            if self.closed.done():
                return
            now = self.clock.monotonic()
            if now - self.last_received >= timeout:
                log.info("HBONE connection silent for %.0fs; dropping it", now - self.last_received)
                self.abort()
                return
            if (
                idle_timeout is not None
                and not self.streams
                and now - self.idle_since >= idle_timeout
            ):
                self.goaway()
                self.close()
                return
            self.core.ping(next(_ping_ids).to_bytes(8, "big"))
            self.flush()

    async def wait_closed(self) -> None:
        # Shielded: a cancelled waiter must not cancel the future everyone else waits on.
        await asyncio.shield(self.closed)

    # ================================================================== streams

    def _new_stream(self, stream_id: int, extra: dict[str, Any]) -> TunnelStream:
        stream = TunnelStream(self, stream_id, {**self.extra, **extra})
        self.streams[stream_id] = stream
        return stream

    def forget(self, stream: TunnelStream) -> None:
        """A stream is finished: drop it (the core already has)."""
        self.streams.pop(stream.stream_id, None)
        self.window_blocked.discard(stream)
        self.write_blocked.discard(stream)
        if not self.streams:
            self.idle_since = self.clock.monotonic()
            if self._idle_waiter is not None and not self._idle_waiter.done():
                self._idle_waiter.set_result(None)
            if self.core.goaway_received is not None and self.core.role is Role.CLIENT:
                self.close()  # drained by the peer: nothing will use this connection again

    def _when_idle(self, future: asyncio.Future[object]) -> None:
        if not self.streams:
            future.set_result(None)
        else:
            self._idle_waiter = future

    # ================================================================== events

    def _on_data(self, event: DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream._deliver(event.data)

    def _on_stream_ended(self, event: StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream._remote_ended()

    def _on_stream_reset(self, event: StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream._reset(event.error_code, remote=event.remote)

    def _on_response(self, event: ResponseReceived) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream._response_received(event)

    def _on_request_received(self, event: RequestReceived) -> None:
        stream = self._new_stream(event.stream_id, {"authority": str(event.authority)})
        if self._on_request is None:
            self.core.send_response(event.stream_id, 503)
            stream.reset(ErrorCode.REFUSED_STREAM)
            return
        self._on_request(stream, event)

    def _on_request_rejected(self, event: RequestRejected) -> None:
        log.info("rejected HBONE stream %d: %s", event.stream_id, event.reason)

    def _on_window_updated(self, event: WindowUpdated) -> None:
        if event.stream_id == 0:
            for stream in list(self.window_blocked):
                stream._window_opened()
            return
        blocked = self.streams.get(event.stream_id)
        if blocked is not None:
            blocked._window_opened()

    def _on_settings(self, event: SettingsChanged) -> None:
        if not self.ready.done():
            self.ready.set_result(True)
        for stream in list(self.window_blocked):
            stream._window_opened()

    def _on_goaway(self, event: GoAwayReceived) -> None:
        log.info(
            "peer sent GOAWAY (last stream %d, %s)",
            event.last_stream_id,
            ErrorCode.describe(event.error_code),
        )
        if not self.streams and self.core.role is Role.CLIENT:
            self.close()

    def _on_terminated(self, event: ConnectionTerminated) -> None:
        log.info(
            "HBONE connection error: %s (%s)", event.reason, ErrorCode.describe(event.error_code)
        )
        self.close()


def _ignore(event: Event) -> None:
    pass
