"""The server side of a tunnel connection: CONNECT requests admitted, answered or refused.

A stream is refused unprocessed (REFUSED_STREAM, the client may retry) over the concurrency
limit or after our GOAWAY (RFC 9113 §5.1.2, §6.8); a malformed field block is reset
(PROTOCOL_ERROR); a well-formed request that is not a usable CONNECT is answered 400, as
ztunnel does. Everything else becomes a ``RequestReceived`` for the application to answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import frames
from ambientmesh.protocol.authority import InvalidAuthority, parse_authority
from ambientmesh.protocol.connection import Role, TunnelConnection
from ambientmesh.protocol.events import RequestReceived, RequestRejected, StreamEnded
from ambientmesh.protocol.frames import ErrorCode
from ambientmesh.protocol.header_block import HeaderBlock
from ambientmesh.protocol.headers import (
    MalformedFields,
    check_outgoing,
    parse_request,
    response_fields,
)
from ambientmesh.protocol.reader import H2ConnectionError
from ambientmesh.protocol.settings import H2Settings
from ambientmesh.protocol.stream import Stream


class ServerConnection(TunnelConnection):
    """Admits CONNECT requests; the application answers each with ``send_response``."""

    role = Role.SERVER

    def __init__(self, *, settings: H2Settings | None = None) -> None:
        super().__init__(settings=settings or H2Settings(), client=False)

    def send_response(
        self, stream_id: int, status: int, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Answer a CONNECT. A 2xx opens the tunnel; anything else ends the stream (and asks
        the client to stop sending, RFC 9113 §8.1)."""
        stream = self._local_stream(stream_id)
        if stream.response_done:
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

    def _on_header_block(self, block: HeaderBlock) -> None:
        stream_id = block.stream_id
        if not self._admit(stream_id):
            return
        try:
            head = parse_request(block.fields)
        except MalformedFields as error:
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.PROTOCOL_ERROR)
            self._events.append(
                RequestRejected(stream_id=stream_id, status=None, reason=str(error))
            )
            return
        stream = self._new_stream(stream_id)
        stream.remote_closed = block.end_stream
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
        if block.end_stream:
            self._events.append(StreamEnded(stream_id=stream_id))

    def _admit(self, stream_id: int) -> bool:
        """Whether a header block may open this stream; the others are answered here."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            # RFC 9113 §8.5: after the request, only DATA and stream management frames.
            code = ErrorCode.STREAM_CLOSED if stream.remote_closed else ErrorCode.PROTOCOL_ERROR
            self._stream_error(stream, code)
            return False
        if stream_id % 2 == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "client opened an even stream")
        if stream_id <= self._streams.last_peer:
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.STREAM_CLOSED)
            return False
        self._streams.last_peer = stream_id
        if (
            self.goaway_sent is not None
            or len(self._streams) >= self.settings.max_concurrent_streams
        ):
            # RFC 9113 §5.1.2, §6.8: refused streams were not processed; the client may retry.
            self._small += frames.rst_stream_frame(stream_id, ErrorCode.REFUSED_STREAM)
            return False
        return True

    def _reject(self, stream: Stream, reason: str) -> None:
        self.send_response(stream.stream_id, 400)
        self._events.append(RequestRejected(stream_id=stream.stream_id, status=400, reason=reason))
