"""The frame dispatcher: the connection core's state, and every received frame turned into events.

This is the receiving half of ``TunnelConnection``. ``receive_data`` feeds the frame reader,
whose hooks land here: DATA is charged to the flow-control windows and passed on as views,
control frames (RFC 9113 §6) update the connection's state, and header blocks go to the
role's ``_on_header_block``. Answers the protocol requires (SETTINGS and PING
acknowledgements, WINDOW_UPDATE credit, RST_STREAM, GOAWAY) are queued in ``_small``.

Stream credit is granted back only when the application calls ``acknowledge`` — after the
bytes were written onward — so each stream buffers at most its stream window.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import hpack

from ambientmesh.protocol import frames
from ambientmesh.protocol.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    PingAcknowledged,
    SettingsChanged,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from ambientmesh.protocol.frames import DEFAULT_WINDOW, MAX_WINDOW, ErrorCode, Flag, FrameType
from ambientmesh.protocol.header_block import HeaderBlock, HeaderBlockAssembler
from ambientmesh.protocol.reader import FrameReader, H2ConnectionError
from ambientmesh.protocol.settings import H2Settings
from ambientmesh.protocol.stream import Stream
from ambientmesh.protocol.stream_table import StreamTable
from ambientmesh.protocol.windows import ConnectionWindows

Output = list[bytes | bytearray | memoryview]


class FrameDispatcher(FrameReader, ABC):
    """Received frames to events and protocol answers, for either role."""

    def __init__(self, *, settings: H2Settings, client: bool) -> None:
        super().__init__(expect_preface=not client, max_frame_size=settings.max_frame_size)
        self.settings = settings
        self._client = client
        self._streams = StreamTable(client=client)
        self._windows = ConnectionWindows(batch=settings.connection_window // 2)
        self._stream_batch = settings.initial_stream_window // 2
        self._header_blocks = HeaderBlockAssembler(
            max_header_list_size=settings.max_header_list_size,
            header_table_size=settings.header_table_size,
        )
        self._encoder = hpack.Encoder()
        # Small frames are gathered here and written as one piece; see ``data_to_send``.
        self._small = bytearray()
        self._out: Output = []
        self._events: list[Event] = []
        # What the peer told us (RFC 9113 §6.5.2 defaults until its SETTINGS arrive).
        self.peer_max_concurrent_streams = 2**31 - 1
        self.peer_max_frame_size = frames.DEFAULT_MAX_FRAME_SIZE
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_settings_received = False
        self.goaway_sent: int | None = None
        self.goaway_received: int | None = None
        self.closed = False
        # The DATA frame being read.
        self._data_target: Stream | None = None
        self._data_deliver = False
        self._data_end_stream = False
        self._handlers: dict[int, Callable[[int, int, memoryview], None]] = {
            FrameType.HEADERS: self._on_headers,
            FrameType.CONTINUATION: self._on_continuation,
            FrameType.RST_STREAM: self._on_rst_stream,
            FrameType.SETTINGS: self._on_settings,
            FrameType.PING: self._on_ping,
            FrameType.GOAWAY: self._on_goaway,
            FrameType.WINDOW_UPDATE: self._on_window_update,
            FrameType.PRIORITY: self._on_priority,
            FrameType.PUSH_PROMISE: self._on_push_promise,
        }

    @abstractmethod
    def _on_header_block(self, block: HeaderBlock) -> None:
        """A complete header block: a request (server) or a response (client)."""

    # ================================================================== receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Process received bytes; returns what happened. See the module docstring."""
        events = self._events = []
        if self.closed:
            return events
        try:
            self._feed(data if isinstance(data, memoryview) else memoryview(data))
        except H2ConnectionError as error:
            self._fail(error.code, error.reason)
        return events

    def acknowledge(self, stream_id: int, size: int) -> None:
        """``size`` received octets of this stream were consumed: grant them back (batched)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        stream.recv_unacked += size
        if stream.recv_unacked >= self._stream_batch:
            self._small += frames.window_update_frame(stream.stream_id, stream.recv_unacked)
            stream.recv_window += stream.recv_unacked
            stream.recv_unacked = 0

    def _fail(self, code: ErrorCode, reason: str) -> None:
        self._small += frames.goaway_frame(self._streams.last_peer, code, reason.encode()[:256])
        self.closed = True
        self._streams.clear()
        self._events.append(ConnectionTerminated(error_code=code, reason=reason, remote=False))

    # ------------------------------------------------------------------ DATA hooks

    def _on_data_start(self, stream_id: int, flags: int, length: int, overhead: int) -> None:
        self._expect_settings_first()
        if self._header_blocks.in_progress:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA inside a header block")
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        # RFC 9113 §6.9.1: every DATA octet counts against the connection, whatever the
        # stream's fate, and is granted back at once (bytes are off the socket).
        granted = self._windows.received(length)
        if granted:
            self._small += frames.window_update_frame(0, granted)
        self._data_target = None
        self._data_deliver = False
        stream = self._streams.get(stream_id)
        if stream is None:
            self._closed_or_idle(stream_id, "DATA")
            return
        if stream.remote_closed:
            self._stream_error(stream, ErrorCode.STREAM_CLOSED)
            return
        if length > stream.recv_window:
            self._stream_error(stream, ErrorCode.FLOW_CONTROL_ERROR)
            return
        if self._client and not stream.response_done:
            self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)  # RFC 9113 §8.1: HEADERS first
            return
        stream.recv_window -= length
        self._data_target = stream
        self._data_end_stream = bool(flags & Flag.END_STREAM)
        self._data_deliver = not stream.discard
        # Padding, and bytes nobody will read, are consumed the moment they arrive.
        if overhead or stream.discard:
            self.acknowledge(stream_id, length if stream.discard else overhead)

    def _on_data(self, view: memoryview) -> None:
        if self._data_deliver:
            target = self._data_target
            assert target is not None
            self._events.append(DataReceived(stream_id=target.stream_id, data=view))

    def _on_data_end(self) -> None:
        stream = self._data_target
        self._data_target = None
        if stream is not None and self._data_end_stream and stream.stream_id in self._streams:
            self._remote_end(stream)

    # ------------------------------------------------------------------ frame hooks

    def _on_frame(self, frame_type: int, flags: int, stream_id: int, payload: memoryview) -> None:
        if self.closed:
            return
        if frame_type != FrameType.SETTINGS:
            self._expect_settings_first()
        if self._header_blocks.in_progress and frame_type != FrameType.CONTINUATION:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted")
        handler = self._handlers.get(frame_type)
        if handler is not None:  # RFC 9113 §4.1: unknown frame types are ignored
            handler(flags, stream_id, payload)

    def _expect_settings_first(self) -> None:
        if not self.peer_settings_received:
            # RFC 9113 §3.4: the preface is followed by a SETTINGS frame.
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "first frame is not SETTINGS")

    def _on_headers(self, flags: int, stream_id: int, payload: memoryview) -> None:
        block = self._header_blocks.headers(flags, stream_id, payload)
        if block is not None:
            self._on_header_block(block)

    def _on_continuation(self, flags: int, stream_id: int, payload: memoryview) -> None:
        block = self._header_blocks.continuation(flags, stream_id, payload)
        if block is not None:
            self._on_header_block(block)

    def _on_rst_stream(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM length is not 4")
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            self._check_not_idle(stream_id, "RST_STREAM")
            return
        code = frames.unpack_u32(payload, 0)[0]
        self._events.append(StreamReset(stream_id=stream_id, error_code=code, remote=True))

    def _on_settings(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & Flag.ACK:
            if payload:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload")
            if not self.peer_settings_received:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "first frame is a SETTINGS ACK")
            return
        if len(payload) % 6:
            raise H2ConnectionError(
                ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6"
            )
        for offset in range(0, len(payload), 6):
            self._apply_setting(*frames.unpack_setting(payload, offset))
        self.peer_settings_received = True
        self._small += frames.SETTINGS_ACK
        self._events.append(
            SettingsChanged(
                max_concurrent_streams=self.peer_max_concurrent_streams,
                max_frame_size=self.peer_max_frame_size,
                initial_window_size=self.peer_initial_window,
            )
        )

    def _apply_setting(self, ident: int, value: int) -> None:
        if ident == frames.Setting.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "initial window too large")
            delta = value - self.peer_initial_window
            self.peer_initial_window = value
            for stream in self._streams.values():  # RFC 9113 §6.9.2
                stream.send_window += delta
                if stream.send_window > MAX_WINDOW:
                    raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow")
        elif ident == frames.Setting.MAX_FRAME_SIZE:
            if not frames.DEFAULT_MAX_FRAME_SIZE <= value <= frames.LARGEST_FRAME_SIZE:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, f"bad max frame size {value}")
            self.peer_max_frame_size = value
        elif ident == frames.Setting.MAX_CONCURRENT_STREAMS:
            self.peer_max_concurrent_streams = value
        elif ident == frames.Setting.HEADER_TABLE_SIZE:
            # We may use less of the peer's table than offered; 64 KiB bounds our memory.
            self._encoder.header_table_size = min(value, 65_536)
        elif ident in (frames.Setting.ENABLE_PUSH, frames.Setting.ENABLE_CONNECT_PROTOCOL):
            if value > 1:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, f"setting {ident} must be 0/1")
            if ident == frames.Setting.ENABLE_PUSH and value and self._client:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "server enabled push")

    def _on_ping(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING length is not 8")
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if flags & Flag.ACK:
            self._events.append(PingAcknowledged(opaque=bytes(payload)))
        else:
            self._small += frames.ping_frame(bytes(payload), ack=True)

    def _on_goaway(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if stream_id != 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
        if len(payload) < 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 octets")
        last, code = frames.unpack_u32_pair(payload, 0)
        last &= frames.STREAM_ID_MASK
        if self.goaway_received is not None:
            last = min(last, self.goaway_received)
        self.goaway_received = last
        self._events.append(
            GoAwayReceived(last_stream_id=last, error_code=code, debug=bytes(payload[8:]))
        )
        # Our streams above ``last`` were never processed (RFC 9113 §6.8): refused, retryable.
        for unseen in [sid for sid in self._streams if sid > last and self._streams.is_local(sid)]:
            del self._streams[unseen]
            self._events.append(
                StreamReset(stream_id=unseen, error_code=ErrorCode.REFUSED_STREAM, remote=True)
            )

    def _on_window_update(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4")
        increment = frames.unpack_u32(payload, 0)[0] & frames.STREAM_ID_MASK
        if stream_id == 0:
            self._windows.credited(increment)
            self._events.append(WindowUpdated(stream_id=0))
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            self._check_not_idle(stream_id, "WINDOW_UPDATE")
            return
        if increment == 0:
            self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream, ErrorCode.FLOW_CONTROL_ERROR)
            return
        self._events.append(WindowUpdated(stream_id=stream_id))

    def _on_priority(self, flags: int, stream_id: int, payload: memoryview) -> None:
        # RFC 9113 §5.3.2 deprecates priority signals; only their form is checked.
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
        if len(payload) != 5:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY length is not 5")
        if frames.unpack_u32(payload, 0)[0] & frames.STREAM_ID_MASK == stream_id:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "stream depends on itself")

    def _on_push_promise(self, flags: int, stream_id: int, payload: memoryview) -> None:
        # Servers never receive it; our clients disable push (RFC 9113 §8.4).
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE is not allowed")

    # ------------------------------------------------------------------ stream endings

    def _remote_end(self, stream: Stream) -> None:
        stream.remote_closed = True
        if stream.local_closed:
            self._streams.pop(stream.stream_id, None)
        if not stream.discard:
            self._events.append(StreamEnded(stream_id=stream.stream_id))

    def _stream_error(self, stream: Stream, code: ErrorCode) -> None:
        """RFC 9113 §5.4.2: reset just this stream and tell the application."""
        del self._streams[stream.stream_id]
        self._small += frames.rst_stream_frame(stream.stream_id, code)
        self._events.append(StreamReset(stream_id=stream.stream_id, error_code=code, remote=False))

    def _check_not_idle(self, stream_id: int, what: str) -> None:
        if self._streams.is_idle(stream_id):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, f"{what} on idle stream {stream_id}")

    def _closed_or_idle(self, stream_id: int, what: str) -> None:
        self._check_not_idle(stream_id, what)
        # RFC 9113 §5.1 "closed": a frame on a stream that is gone is a STREAM_CLOSED error.
        self._small += frames.rst_stream_frame(stream_id, ErrorCode.STREAM_CLOSED)
