"""One CONNECT stream's state: its two halves and both windows (RFC 9113 §5.1, §6.9)."""

from __future__ import annotations

from enum import Enum


class StreamState(Enum):
    """RFC 9113 §5.1 states a stream can be in once it exists (idle streams are not objects)."""

    OPEN = "open"
    HALF_CLOSED_LOCAL = "half-closed (local)"
    HALF_CLOSED_REMOTE = "half-closed (remote)"
    CLOSED = "closed"


class Stream:
    """Mutable bookkeeping for one stream, owned by its connection core.

    ``recv_window`` is the credit the peer still holds; ``recv_unacked`` is what the
    application has consumed but we have not yet granted back with WINDOW_UPDATE.
    """

    __slots__ = (
        "discard",
        "local_closed",
        "recv_unacked",
        "recv_window",
        "remote_closed",
        "response_done",
        "send_window",
        "stream_id",
        "tunnel_open",
    )

    def __init__(self, stream_id: int, *, send_window: int, recv_window: int) -> None:
        self.stream_id = stream_id
        self.send_window = send_window
        self.recv_window = recv_window
        self.recv_unacked = 0
        self.local_closed = False
        self.remote_closed = False
        # Client: the final response arrived. Server: we sent it.
        self.response_done = False
        # A 2xx response was sent or received: DATA is tunnel bytes.
        self.tunnel_open = False
        # Server: we answered without opening a tunnel; request bytes are dropped.
        self.discard = False

    @property
    def state(self) -> StreamState:
        if self.local_closed and self.remote_closed:
            return StreamState.CLOSED
        if self.local_closed:
            return StreamState.HALF_CLOSED_LOCAL
        if self.remote_closed:
            return StreamState.HALF_CLOSED_REMOTE
        return StreamState.OPEN
