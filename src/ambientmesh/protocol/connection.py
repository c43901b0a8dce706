"""The HBONE connection core: HTTP/2 reduced to CONNECT tunnels, sans I/O (RFC 9113).

Feed received bytes to ``receive_data`` and act on the events it returns; call the
``send_*``/``open_stream`` methods to act; write what ``data_to_send`` returns, in order.
The core never reads a clock and never touches a socket.

``TunnelConnection`` holds what both roles share; ``ClientConnection`` (``client_side``) opens
CONNECT streams and reads responses, ``ServerConnection`` (``server_side``) admits requests and
answers them. Receiving lives in ``dispatch``, connection flow control in ``windows``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import ClassVar

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import frames
from ambientmesh.protocol.dispatch import FrameDispatcher
from ambientmesh.protocol.frames import ErrorCode, Flag, FrameType
from ambientmesh.protocol.stream import Stream

# DATA payloads up to this size are copied next to their frame header (one write, one TLS
# record); larger ones are queued by reference so the bulk path never copies.
_COPY_LIMIT = 16 * 1024


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class TunnelConnection(FrameDispatcher):
    """One HTTP/2 connection carrying CONNECT tunnels; see the role subclasses."""

    role: ClassVar[Role]

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
            and self._streams.ids_left
            and len(self._streams) < self.peer_max_concurrent_streams
        )

    def stream_ids(self) -> list[int]:
        return list(self._streams)

    def send_capacity(self, stream_id: int) -> int:
        """How many DATA octets ``send_data`` accepts now on this stream (0 when blocked)."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            return 0
        return max(0, min(stream.send_window, self._windows.send))

    # ================================================================== actions

    def initiate(self) -> None:
        """Queue our SETTINGS and the connection window (a client's preface goes first)."""
        self._small += frames.settings_frame(self.settings.advertised(client=self._client))
        extra = self._windows.enlarge(self.settings.connection_window)
        if extra:
            self._small += frames.window_update_frame(0, extra)

    def open_stream(self, authority: str, headers: Iterable[tuple[str, str]] = ()) -> int:
        """Client: send a CONNECT for ``authority``; returns the new stream's id."""
        raise LocalProtocolError("only a client opens CONNECT streams")

    def send_response(
        self, stream_id: int, status: int, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Server: answer a CONNECT."""
        self._local_stream(stream_id)
        raise LocalProtocolError(f"stream {stream_id} cannot take a response now")

    def send_data(
        self, stream_id: int, data: bytes | bytearray | memoryview, *, end_stream: bool = False
    ) -> None:
        """Queue tunnel bytes; at most ``send_capacity`` octets. Large payloads are queued by
        reference: keep ``data`` unchanged until ``data_to_send`` has been written."""
        stream = self._local_stream(stream_id)
        size = len(data)
        if size == 0 and not end_stream:
            return
        windows = self._windows
        if size > min(stream.send_window, windows.send):
            raise LocalProtocolError(
                f"{size} octets exceed the send window of stream {stream_id}",
                error_code=ErrorCode.FLOW_CONTROL_ERROR,
            )
        if not stream.tunnel_open:
            raise LocalProtocolError(f"stream {stream_id} has no open tunnel to send on")
        stream.send_window -= size
        windows.send -= size
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

    def ping(self, opaque: bytes) -> None:
        self._small += frames.ping_frame(opaque)

    def goaway(self, error_code: int = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """Announce that no stream above the last one we saw will be served (RFC 9113 §6.8)."""
        if self.closed:
            return
        self.goaway_sent = self._streams.last_peer
        self._small += frames.goaway_frame(self._streams.last_peer, error_code, debug)
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

    # ------------------------------------------------------------------ helpers

    def _new_stream(self, stream_id: int) -> Stream:
        return Stream(
            stream_id,
            send_window=self.peer_initial_window,
            recv_window=self.settings.initial_stream_window,
        )

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
