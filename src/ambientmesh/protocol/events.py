"""What an HBONE connection reports after reading bytes: facts, named in the past tense.

A ``DataReceived.data`` view points into the buffer handed to ``receive_data`` and is valid
only until that call's caller returns to the event loop: consume or copy it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ambientmesh.protocol.authority import Authority

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """Server side: a well-formed CONNECT asked for a tunnel to ``authority``."""

    stream_id: int
    authority: Authority
    headers: Headers  # regular fields only, lowercase names, in arrival order


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejected:
    """Server side: a request the connection refused by itself: answered 400 (``status``),
    or reset as malformed (``status`` None, RST_STREAM with PROTOCOL_ERROR)."""

    stream_id: int
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """Client side: the final response to a CONNECT. A 2xx opens the tunnel; anything else
    ends it."""

    stream_id: int
    status: int
    headers: Headers


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived:
    """Tunnel bytes for a stream (a DATA payload, possibly a piece of one)."""

    stream_id: int
    data: memoryview


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded:
    """The peer half-closed the stream (END_STREAM): no more bytes will arrive on it."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReset:
    """The stream is gone: the peer sent RST_STREAM (``remote``), or we reset it because the
    peer broke a rule for this stream (RFC 9113 §5.4.2)."""

    stream_id: int
    error_code: int
    remote: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdated:
    """Send capacity grew on a stream, or on the whole connection when ``stream_id`` is 0."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsChanged:
    """The peer's SETTINGS took effect (the first one completes the HTTP/2 handshake)."""

    max_concurrent_streams: int
    max_frame_size: int
    initial_window_size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PingAcknowledged:
    opaque: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAwayReceived:
    """The peer will process no stream above ``last_stream_id``; streams of ours above it
    were never seen and may be retried elsewhere (RFC 9113 §6.8)."""

    last_stream_id: int
    error_code: int
    debug: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionTerminated:
    """The connection is finished: the peer broke a connection-level rule (we queued a GOAWAY
    with ``error_code``), or it closed cleanly. The caller flushes and closes the socket."""

    error_code: int
    reason: str
    remote: bool


Event = (
    RequestReceived
    | RequestRejected
    | ResponseReceived
    | DataReceived
    | StreamEnded
    | StreamReset
    | WindowUpdated
    | SettingsChanged
    | PingAcknowledged
    | GoAwayReceived
    | ConnectionTerminated
)
