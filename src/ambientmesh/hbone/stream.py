"""One CONNECT stream presented as an asyncio Transport, so any Protocol can run over a tunnel.

``write`` becomes DATA frames (at most the send window; the rest waits, and the protocol is
paused), ``write_eof`` is END_STREAM, ``abort`` is RST_STREAM with CONNECT_ERROR (RFC 9113
§8.5: how a proxy reports a broken TCP connection). Received DATA goes to the protocol;
while reading is paused the stream keeps receiving but stops granting window back, so the
peer stops after one stream window. RST_STREAM with NO_ERROR or CANCEL ends the stream
cleanly (EOF); any other code is a reset the protocol sees as an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ambientmesh.errors import MeshError, ResourceBroken, UpstreamReset
from ambientmesh.hbone.errors import StreamRefused
from ambientmesh.io.relay import ZERO_COPY_WRITE
from ambientmesh.protocol import ErrorCode, ResponseReceived

if TYPE_CHECKING:
    from ambientmesh.hbone.connection import HboneConnection

_DEFAULT_HIGH_WATER = 64 * 1024
_CLEAN_RESETS = (ErrorCode.NO_ERROR, ErrorCode.CANCEL)


class TunnelStream(asyncio.Transport):
    """A tunnel's byte stream. Attach a protocol with ``attach``; the transport never keeps a
    reference to data passed to ``write`` (it frames or copies it before returning)."""

    def __init__(self, connection: HboneConnection, stream_id: int, extra: dict[str, Any]) -> None:
        super().__init__({**extra, ZERO_COPY_WRITE: True})
        self._conn = connection
        self._core = connection.core
        self.stream_id = stream_id
        self._protocol: asyncio.BaseProtocol | None = None
        self._early: bytearray | None = None  # received before a protocol was attached
        self._early_eof = False
        self._pending = bytearray()  # written beyond the send window
        self._high_water = _DEFAULT_HIGH_WATER
        self._low_water = _DEFAULT_HIGH_WATER // 4
        self._protocol_paused = False
        self._eof_wanted = False
        self._local_done = False
        self._remote_done = False
        self._closing = False
        self._lost = False
        self._reading_paused = False
        self._unacked = 0
        self._loss_error: MeshError | None = None
        self.response: asyncio.Future[ResponseReceived] | None = None

    # ================================================================== asyncio.Transport

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None, "no protocol attached"
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Make ``protocol`` this stream's protocol, call connection_made, replay early bytes."""
        self._protocol = protocol
        protocol.connection_made(self)
        early, self._early = self._early, None
        if self._lost:
            # It ended before anyone listened (say, reset right behind its 200): replay the
            # bytes and the ending so the protocol still sees the whole story.
            if early:
                _feed(protocol, memoryview(early))
            if self._early_eof or self._loss_error is None:
                protocol.eof_received()  # type: ignore[attr-defined]
            asyncio.get_running_loop().call_soon(protocol.connection_lost, self._loss_error)
            return
        if early:
            self._deliver(memoryview(early))
        if self._early_eof:
            self._remote_ended()

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        """Finish sending (what is queued, then END_STREAM) and stop receiving."""
        if self._closing or self._lost:
            return
        self._closing = True
        self.write_eof()

    def abort(self) -> None:
        self.reset(ErrorCode.CONNECT_ERROR)

    def reset(self, error_code: int) -> None:
        """Send RST_STREAM with ``error_code`` and drop anything queued."""
        if self._lost:
            return
        self._pending.clear()
        self._core.reset_stream(self.stream_id, error_code)
        self._conn.flush()
        self._local_done = self._remote_done = True
        self._lose(None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._local_done or self._eof_wanted or self._lost or not data:
            return
        if self._pending:
            self._pending += data
            self._check_high_water()
            return
        size = len(data)
        capacity = self._core.send_capacity(self.stream_id)
        if size <= capacity:
            self._core.send_data(self.stream_id, data)
        else:
            view = memoryview(data)
            if capacity:
                self._core.send_data(self.stream_id, view[:capacity])
            self._pending += view[capacity:]
            self._conn.window_blocked.add(self)
        self._conn.flush()
        self._check_high_water()
        if self._conn.write_paused:
            self._pause_protocol()
            self._conn.write_blocked.add(self)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        if self._local_done or self._eof_wanted or self._lost:
            return
        if self._pending:
            self._eof_wanted = True
            return
        self._core.end_stream(self.stream_id)
        self._conn.flush()
        self._local_ended()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low_water, self._high_water

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water = _DEFAULT_HIGH_WATER if high is None else high
        self._low_water = self._high_water // 4 if low is None else low
        self._check_high_water()

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        self._reading_paused = False
        if self._unacked:
            unacked, self._unacked = self._unacked, 0
            self._core.acknowledge(self.stream_id, unacked)
            self._conn.flush()

    def is_reading(self) -> bool:
        return not self._reading_paused

    def respond(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Server: answer the CONNECT. 2xx opens the tunnel; anything else ends the stream."""
        if self._lost:
            raise ResourceBroken(f"tunnel stream {self.stream_id} ended before it was answered")
        self._core.send_response(self.stream_id, status, headers)
        self._conn.flush()
        if not 200 <= status < 300:
            self._local_done = self._remote_done = True
            self._lose(None)

    # ================================================================== from the connection

    def _deliver(self, view: memoryview) -> None:
        protocol = self._protocol
        if self._lost:
            return
        if protocol is None:
            if self._early is None:
                self._early = bytearray()
            self._early += view  # bounded by the stream window: nothing is granted back yet
            return
        size = len(view)
        _feed(protocol, view)
        if self._reading_paused:
            self._unacked += size
        else:
            self._core.acknowledge(self.stream_id, size)

    def _remote_ended(self) -> None:
        self._remote_done = True
        protocol = self._protocol
        if protocol is None:
            self._early_eof = True
            return
        if not self._lost and not protocol.eof_received():  # type: ignore[attr-defined]
            self.close()
        self._check_done()

    def _reset(self, error_code: int, *, remote: bool) -> None:
        """The core dropped the stream (RST_STREAM either way, or a refused stream)."""
        self._pending.clear()
        self._local_done = self._remote_done = True
        error: MeshError | None = None
        if error_code == ErrorCode.REFUSED_STREAM:
            error = StreamRefused("peer refused the stream before processing it")
        elif not remote or error_code not in _CLEAN_RESETS:
            who = "peer" if remote else "we"
            error = UpstreamReset(
                f"{who} reset the tunnel stream: {ErrorCode.describe(error_code)}"
            )
        elif self._protocol is not None and not self._early_eof:
            self._protocol.eof_received()  # type: ignore[attr-defined]
        if self.response is not None and not self.response.done():
            self.response.set_exception(error or UpstreamReset("stream closed before a response"))
        self._lose(error)

    def _response_received(self, event: ResponseReceived) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_result(event)

    def _window_opened(self) -> None:
        if not self._pending or self._lost:
            self._conn.window_blocked.discard(self)
            return
        capacity = self._core.send_capacity(self.stream_id)
        if capacity <= 0:
            return
        chunk = bytes(self._pending[:capacity])
        del self._pending[:capacity]
        self._core.send_data(self.stream_id, chunk)
        self._conn.flush()
        if not self._pending:
            self._conn.window_blocked.discard(self)
            if self._eof_wanted:
                self._eof_wanted = False
                self.write_eof()
        self._check_low_water()

    def _writing_resumed(self) -> None:
        self._check_low_water()

    def _connection_lost(self, error: MeshError) -> None:
        self._local_done = self._remote_done = True
        if self.response is not None and not self.response.done():
            self.response.set_exception(error)
        self._lose(error)

    # ================================================================== internals

    def _local_ended(self) -> None:
        self._local_done = True
        if self._closing and not self._remote_done:
            # Closing means we will not read any more: tell the peer to stop (a clean end).
            self._core.reset_stream(self.stream_id, ErrorCode.CANCEL)
            self._conn.flush()
            self._remote_done = True
        self._check_done()

    def _check_done(self) -> None:
        if self._local_done and self._remote_done:
            self._lose(None)

    def _lose(self, error: MeshError | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._loss_error = error
        self._conn.forget(self)
        if self._protocol is not None:
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, error)

    def _check_high_water(self) -> None:
        if len(self._pending) > self._high_water:
            self._pause_protocol()

    def _check_low_water(self) -> None:
        if (
            self._protocol_paused
            and len(self._pending) <= self._low_water
            and not self._conn.write_paused
        ):
            self._protocol_paused = False
            if self._protocol is not None and not self._lost:
                self._protocol.resume_writing()

    def _pause_protocol(self) -> None:
        if not self._protocol_paused and self._protocol is not None:
            self._protocol_paused = True
            self._protocol.pause_writing()


def _feed(protocol: asyncio.BaseProtocol, view: memoryview) -> None:
    """Hand bytes to any kind of protocol: relays take the view itself, others a copy."""
    sink = getattr(protocol, "view_received", None)
    if sink is not None:
        sink(view)
    elif isinstance(protocol, asyncio.BufferedProtocol):
        _copy_into(protocol, view)
    else:
        protocol.data_received(bytes(view))  # type: ignore[attr-defined]


def _copy_into(protocol: asyncio.BufferedProtocol, view: memoryview) -> None:
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        size = min(len(buffer), len(view))
        buffer[:size] = view[:size]
        protocol.buffer_updated(size)
        view = view[size:]
