"""The client side of a tunnel connection: CONNECT requests out, responses in (RFC 9113 §8.5)."""

from __future__ import annotations

from collections.abc import Iterable

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import frames
from ambientmesh.protocol.connection import Role, TunnelConnection
from ambientmesh.protocol.events import ResponseReceived
from ambientmesh.protocol.frames import ErrorCode
from ambientmesh.protocol.header_block import HeaderBlock
from ambientmesh.protocol.headers import (
    MalformedFields,
    check_outgoing,
    connect_fields,
    parse_response,
)
from ambientmesh.protocol.settings import H2Settings


class ClientConnection(TunnelConnection):
    """Opens CONNECT streams; a 2xx response opens the tunnel, anything else ends it."""

    role = Role.CLIENT

    def __init__(self, *, settings: H2Settings | None = None) -> None:
        super().__init__(settings=settings or H2Settings.for_client(), client=True)

    def initiate(self) -> None:
        """Queue the connection preface, then our SETTINGS and the connection window."""
        self._small += frames.PREFACE
        super().initiate()

    def open_stream(self, authority: str, headers: Iterable[tuple[str, str]] = ()) -> int:
        """Send a CONNECT for ``authority``; returns the new stream's id."""
        if not self.accepting_streams:
            raise LocalProtocolError(
                "connection takes no new streams (closed, GOAWAY, or at the peer's limit)",
                error_code=ErrorCode.REFUSED_STREAM,
            )
        fields = connect_fields(authority, headers)
        check_outgoing(fields)
        stream_id = self._streams.allocate_local()
        self._streams[stream_id] = self._new_stream(stream_id)
        self._send_headers(stream_id, fields, end_stream=False)
        return stream_id

    def _on_header_block(self, block: HeaderBlock) -> None:
        stream_id = block.stream_id
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
            status, headers = parse_response(block.fields)
        except MalformedFields:
            self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        if status < 200:
            # Interim responses are skipped; 101 and an ending interim are malformed (§8.1).
            if status == 101 or block.end_stream:
                self._stream_error(stream, ErrorCode.PROTOCOL_ERROR)
            return
        stream.response_done = True
        stream.tunnel_open = status < 300
        stream.discard = not stream.tunnel_open
        self._events.append(ResponseReceived(stream_id=stream_id, status=status, headers=headers))
        if block.end_stream:
            self._remote_end(stream)
