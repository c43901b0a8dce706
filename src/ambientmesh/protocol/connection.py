"""The HBONE connection core: HTTP/2 reduced to CONNECT tunnels, sans I/O (RFC 9113).

Feed received bytes to ``receive_data`` and act on the events it returns; call the
``send_*``/``open_stream`` methods to act; write what ``data_to_send`` returns, in order.
The core never reads a clock and never touches a socket.

Flow control (RFC 9113 §6.9). Connection credit is granted back as soon as DATA is read
off the connection, so one stream can never starve the others of connection window.
Stream credit is granted back only when the application calls ``acknowledge`` — after the
bytes were written onward — so each stream buffers at most its stream window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum

import hpack

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import frames
from ambientmesh.protocol.authority import InvalidAuthority, parse_authority
from ambientmesh.protocol.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    PingAcknowledged,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    SettingsChanged,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from ambientmesh.protocol.frames import DEFAULT_WINDOW, MAX_WINDOW, ErrorCode, Flag, FrameType
from ambientmesh.protocol.headers import (
    MalformedFields,
    check_outgoing,
    connect_fields,
    parse_request,
    parse_response,
    response_fields,
)
from ambientmesh.protocol.reader import FrameReader, H2ConnectionError
from ambientmesh.protocol.settings import H2Settings
from ambientmesh.protocol.stream import Stream

# DATA payloads up to this size are copied next to their frame header (one write, one TLS
# record); larger ones are queued by reference so the bulk path never copies.
_COPY_LIMIT = 16 * 1024
_MAX_STREAM_ID = 2**31 - 1


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class TunnelConnection(FrameReader):
    """One HTTP/2 connection carrying CONNECT tunnels, as client or as server."""

    def __init__(self, *, role: Role, settings: H2Settings | None = None) -> None:
        client = role is Role.CLIENT
        self.settings = settings or (H2Settings.for_client() if client else H2Settings())
        super().__init__(expect_preface=not client, max_frame_size=self.settings.max_frame_size)
        self.role = role
        self._client = client
        self._streams: dict[int, Stream] = {}
        self._small = bytearray()
        self._out: list[bytes | bytearray | memoryview] = []
        self._events: list[Event] = []
        self._encoder = hpack.Encoder()
        self._decoder = hpack.Decoder(max_header_list_size=self.settings.max_header_list_size)
        self._decoder.max_allowed_table_size = self.settings.header_table_size
        # What the peer told us (RFC 9113 §6.5.2 defaults until its SETTINGS arrive).
        self.peer_max_concurrent_streams = 2**31 - 1
        self.peer_max_frame_size = frames.DEFAULT_MAX_FRAME_SIZE
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_settings_received = False
        self._send_window = DEFAULT_WINDOW
        self._recv_window = DEFAULT_WINDOW
        self._recv_consumed = 0
        self._stream_threshold = self.settings.initial_stream_window // 2
        self._connection_threshold = self.settings.connection_window // 2
        self._next_stream_id = 1
        self._last_peer_stream = 0
        self.goaway_sent: int | None = None
        self.goaway_received: int | None = None
        self.closed = False
        # A header block being assembled from HEADERS + CONTINUATION.
        self._in_headers = False
        self._header_stream = 0
        self._header_end_stream = False
        self._header_block = bytearray()
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

    # ================================================================== public state

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def accepting_streams(self) -> bool:
        """Whether ``open_stream`` may be called (client): no GOAWAY either way, not closed,
        and below the peer's concurrency limit."""
        return (
            not self.closed
            and self.goaway_received is None
            and self.goaway_sent is None
            and self._next_stream_id <= _MAX_STREAM_ID
            and len(self._streams) < self.peer_max_concurrent_streams
        )

    def stream_ids(self) -> list[int]:
        return list(self._streams)

    def send_capacity(self, stream_id: int) -> int:
        """How many DATA octets ``send_data`` accepts now on this stream (0 when blocked)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            return 0
        return max(0, min(stream.send_window, self._send_window))

    # ================================================================== actions

    def initiate(self) -> None:
        """Queue the connection preface (client), our SETTINGS and the connection window."""
        if self._client:
            self._small += frames.PREFACE
        self._small += frames.settings_frame(self.settings.advertised(client=self._client))
        extra = self.settings.connection_window - DEFAULT_WINDOW
        if extra:
            self._small += frames.window_update_frame(0, extra)
            self._recv_window += extra

    def open_stream(self, authority: str, headers: Iterable[tuple[str, str]] = ()) -> int:
        """Client: send a CONNECT for ``authority``; returns the new stream's id."""
        if not self._client:
            raise LocalProtocolError("only a client opens CONNECT streams")
        if not self.accepting_streams:
            raise LocalProtocolError(
                "connection takes no new streams (closed, GOAWAY, or at the peer's limit)",
                error_code=ErrorCode.REFUSED_STREAM,
            )
        fields = connect_fields(authority, headers)
        check_outgoing(fields)
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        self._streams[stream_id] = Stream(
            stream_id,
            send_window=self.peer_initial_window,
            recv_window=self.settings.initial_stream_window,
        )
        self._send_headers(stream_id, fields, end_stream=False)
        return stream_id

    def send_response(
        self, stream_id: int, status: int, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Server: answer a CONNECT. A 2xx opens the tunnel; anything else ends the stream
        (and asks the client to stop sending, RFC 9113 §8.1)."""
        stream = self._local_stream(stream_id)
        if self._client or stream.response_done:
            raise LocalProtocolError(f"stream {stream_id} cannot take a response now")
        fields = response_fields(status, headers)
        check_outgoing(fields)
        stream.response_done = True
        if 200 <= status < 300:
            stream.tunnel_open = True
            self._send_headers(stream_id, fields, end_stream=False)
            return
        stream.discard = True
        self._send_headers(stream_id, fields, end_stream=True)
        self._close_local(stream)
        if stream_id in self._streams:
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.NO_ERROR)
            del self._streams[stream_id]

    def send_data(
        self, stream_id: int, data: bytes | bytearray | memoryview, *, end_stream: bool = False
    ) -> None:
        """Queue tunnel bytes; at most ``send_capacity`` octets. Large payloads are queued by
        reference: keep ``data`` unchanged until ``data_to_send`` has been written."""
        stream = self._local_stream(stream_id)
        size = len(data)
        if size == 0 and not end_stream:
            return
        if size > min(stream.send_window, self._send_window):
            raise LocalProtocolError(
                f"{size} octets exceed the send window of stream {stream_id}",
                error_code=ErrorCode.FLOW_CONTROL_ERROR,
            )
        if not stream.tunnel_open:
            raise LocalProtocolError(f"stream {stream_id} has no open tunnel to send on")
        stream.send_window -= size
        self._send_window -= size
        limit = self.peer_max_frame_size
        offset = 0
        while True:
            chunk = data[offset : offset + limit]
            offset += len(chunk)
            last = offset >= size
            flags = Flag.END_STREAM if (last and end_stream) else 0
            self._queue_data(stream_id, chunk, flags)
            if last:
                break
        if end_stream:
            self._close_local(stream)

    def end_stream(self, stream_id: int) -> None:
        """Half-close our side: an empty DATA frame with END_STREAM."""
        stream = self._local_stream(stream_id)
        self._small += frames.frame_header(0, FrameType.DATA, Flag.END_STREAM, stream_id)
        self._close_local(stream)

    def reset_stream(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """Abort a stream with RST_STREAM; a no-op for a stream that is already gone."""
        if self._streams.pop(stream_id, None) is not None and not self.closed:
            self._small += frames.rst_stream_frame(stream_id, error_code)

    def acknowledge(self, stream_id: int, size: int) -> None:
        """``size`` received octets of this stream were consumed: grant them back (batched)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        stream.recv_unacked += size
        if stream.recv_unacked >= self._stream_threshold:
            self._grant_stream(stream)

    def ping(self, opaque: bytes) -> None:
        self._small += frames.ping_frame(opaque)

    def goaway(self, error_code: int = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """Announce that no stream above the last one we saw will be served (RFC 9113 §6.8)."""
        if self.closed:
            return
        self.goaway_sent = self._last_peer_stream
        self._small += frames.goaway_frame(self._last_peer_stream, error_code, debug)
        if error_code != ErrorCode.NO_ERROR:
            self.closed = True

    def data_to_send(self) -> list[bytes | bytearray | memoryview]:
        """Everything queued since the last call, in order; write it all."""
        if self._small:
            self._out.append(bytes(self._small))
            self._small.clear()
        out = self._out
        self._out = []
        return out

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

    def _fail(self, code: ErrorCode, reason: str) -> None:
        self._small += frames.goaway_frame(self._last_peer_stream, code, reason.encode()[:256])
        self.closed = True
        self._streams.clear()
        self._events.append(ConnectionTerminated(error_code=code, reason=reason, remote=False))

    # ------------------------------------------------------------------ DATA hooks

    def _on_data_start(self, stream_id: int, flags: int, length: int, overhead: int) -> None:
        self._expect_settings_first()
        if self._in_headers:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA inside a header block")
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        # RFC 9113 §6.9.1: every DATA octet counts against the connection, whatever the
        # stream's fate, and is granted back at once (bytes are off the socket).
        if length > self._recv_window:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds connection window")
        self._recv_window -= length
        self._recv_consumed += length
        if self._recv_consumed >= self._connection_threshold:
            self._grant_connection()
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
        if self._in_headers and frame_type != FrameType.CONTINUATION:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "header block interrupted")
        handler = self._handlers.get(frame_type)
        if handler is not None:  # RFC 9113 §4.1: unknown frame types are ignored
            handler(flags, stream_id, payload)

    def _expect_settings_first(self) -> None:
        if not self.peer_settings_received:
            # RFC 9113 §3.4: the preface is followed by a SETTINGS frame.
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "first frame is not SETTINGS")

    def _on_headers(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        fragment = _strip_padding(payload, flags)
        if flags & Flag.PRIORITY:
            if len(fragment) < 5:
                raise H2ConnectionError(
                    ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for PRIORITY"
                )
            if frames.unpack_u32(fragment, 0)[0] & frames.STREAM_ID_MASK == stream_id:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "stream depends on itself")
            fragment = fragment[5:]
        self._header_stream = stream_id
        self._header_end_stream = bool(flags & Flag.END_STREAM)
        self._header_block = bytearray(fragment)
        self._check_header_block()
        if flags & Flag.END_HEADERS:
            self._finish_headers()
        else:
            self._in_headers = True

    def _on_continuation(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if not self._in_headers or stream_id != self._header_stream:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION")
        self._header_block += payload
        self._check_header_block()
        if flags & Flag.END_HEADERS:
            self._in_headers = False
            self._finish_headers()

    def _check_header_block(self) -> None:
        # An encoded block is never much smaller than the list it decodes to, so this bounds
        # memory before HPACK runs (CONTINUATION floods).
        if len(self._header_block) > self.settings.max_header_list_size:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")

    def _finish_headers(self) -> None:
        block = bytes(self._header_block)
        self._header_block.clear()
        try:
            fields = self._decoder.decode(block, raw=True)
        except hpack.OversizedHeaderListError:
            raise H2ConnectionError(
                ErrorCode.ENHANCE_YOUR_CALM, "header list exceeds SETTINGS_MAX_HEADER_LIST_SIZE"
            ) from None
        except (hpack.HPACKError, ValueError, IndexError, TypeError) as error:
            raise H2ConnectionError(
                ErrorCode.COMPRESSION_ERROR, f"HPACK decoding failed: {error}"
            ) from None
        raw = [(bytes(name), bytes(value)) for name, value in fields]
        if self._client:
            self._client_headers(self._header_stream, raw, self._header_end_stream)
        else:
            self._server_headers(self._header_stream, raw, self._header_end_stream)

    def _server_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            # RFC 9113 §8.5: after the request, only DATA and stream management frames.
            code = ErrorCode.STREAM_CLOSED if stream.remote_closed else ErrorCode.PROTOCOL_ERROR
            self._stream_error(stream, code)
            return
        if stream_id % 2 == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "client opened an even stream")
        if stream_id <= self._last_peer_stream:
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.STREAM_CLOSED)
            return
        self._last_peer_stream = stream_id
        if (
            self.goaway_sent is not None
            or len(self._streams) >= self.settings.max_concurrent_streams
        ):
            # RFC 9113 §5.1.2, §6.8: refused streams were not processed; the client may retry.
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.REFUSED_STREAM)
            return
        try:
            head = parse_request(fields)
        except MalformedFields as error:
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.PROTOCOL_ERROR)
            self._events.append(
                RequestRejected(stream_id=stream_id, status=None, reason=str(error))
            )
            return
        stream = Stream(
            stream_id,
            send_window=self.peer_initial_window,
            recv_window=self.settings.initial_stream_window,
        )
        stream.remote_closed = end
        self._streams[stream_id] = stream
        if head.method != "CONNECT":
            self._reject(stream, f"method {head.method} is not CONNECT")
            return
        try:
            authority = parse_authority(head.authority or "")
        except InvalidAuthority as error:
            self._reject(stream, error.message)
            return
        self._events.append(
            RequestReceived(stream_id=stream_id, authority=authority, headers=head.headers)
        )
        if end:
            self._events.append(StreamEnded(stream_id=stream_id))

    def _reject(self, stream: Stream, reason: str) -> None:
        self.send_response(stream.stream_id, 400)
        self._events.append(RequestRejected(stream_id=stream.stream_id, status=400, reason=reason))

    def _client_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            self._closed_or_idle(stream_id, "HEADERS")
            return
        if stream.remote_closed:
            self._stream_error(stream, ErrorCode.STREAM_CLOSED)
            return
        if stream.response_done:  # RFC 9113 §8.5: no trailers on a CONNECT stream
            self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        try:
            status, headers = parse_response(fields)
        except MalformedFields:
            self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        if status < 200:
            # Interim responses are skipped; 101 and an ending interim are malformed (§8.1).
            if status == 101 or end:
                self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        stream.response_done = True
        stream.tunnel_open = status < 300
        stream.discard = not stream.tunnel_open
        self._events.append(ResponseReceived(stream_id=stream_id, status=status, headers=headers))
        if end:
            self._remote_end(stream)

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
        mine = 1 if self._client else 0
        for unseen in [sid for sid in self._streams if sid > last and sid % 2 == mine]:
            del self._streams[unseen]
            self._events.append(
                StreamReset(stream_id=unseen, error_code=ErrorCode.REFUSED_STREAM, remote=True)
            )

    def _on_window_update(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4")
        increment = frames.unpack_u32(payload, 0)[0] & frames.STREAM_ID_MASK
        if stream_id == 0:
            if increment == 0:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow")
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

    # ------------------------------------------------------------------ helpers

    def _local_stream(self, stream_id: int) -> Stream:
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed or self.closed:
            raise LocalProtocolError(f"stream {stream_id} is not open for sending")
        return stream

    def _send_headers(
        self, stream_id: int, fields: list[tuple[str, str]], *, end_stream: bool
    ) -> None:
        block = self._encoder.encode(fields)
        self._small += frames.header_block_frames(
            stream_id, block, end_stream=end_stream, max_frame_size=self.peer_max_frame_size
        )

    def _queue_data(
        self, stream_id: int, chunk: bytes | bytearray | memoryview, flags: int
    ) -> None:
        self._small += frames.frame_header(len(chunk), FrameType.DATA, flags, stream_id)
        if len(chunk) <= _COPY_LIMIT:
            self._small += chunk
            return
        self._out.append(bytes(self._small))
        self._small.clear()
        self._out.append(chunk)

    def _close_local(self, stream: Stream) -> None:
        stream.local_closed = True
        if stream.remote_closed:
            self._streams.pop(stream.stream_id, None)

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

    def _grant_stream(self, stream: Stream) -> None:
        self._small += frames.window_update_frame(stream.stream_id, stream.recv_unacked)
        stream.recv_window += stream.recv_unacked
        stream.recv_unacked = 0

    def _grant_connection(self) -> None:
        self._small += frames.window_update_frame(0, self._recv_consumed)
        self._recv_window += self._recv_consumed
        self._recv_consumed = 0

    def _is_idle(self, stream_id: int) -> bool:
        """Whether a stream id names a stream that was never opened (RFC 9113 §5.1)."""
        if stream_id % 2 == (1 if self._client else 0):
            return stream_id >= self._next_stream_id
        return stream_id > self._last_peer_stream

    def _check_not_idle(self, stream_id: int, what: str) -> None:
        if self._is_idle(stream_id):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, f"{what} on idle stream {stream_id}")

    def _closed_or_idle(self, stream_id: int, what: str) -> None:
        self._check_not_idle(stream_id, what)
        # RFC 9113 §5.1 "closed": a frame on a stream that is gone is a STREAM_CLOSED error.
        self._small += frames.rst_stream_frame(stream_id, ErrorCode.STREAM_CLOSED)


def _strip_padding(payload: memoryview, flags: int) -> memoryview:
    if not flags & Flag.PADDED:
        return payload
    if not payload:
        raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame too short")
    pad = payload[0]
    if pad >= len(payload):
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds frame payload")
    return payload[1 : len(payload) - pad]
