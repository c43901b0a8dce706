"""The connection's two flow-control windows, and when credit goes back (RFC 9113 §6.9).

Stream windows live on each ``Stream``; this holds stream 0's. Connection credit is granted
back as soon as DATA is read off the connection, in batches of half the window, so one stream
can never starve the others of connection window.
"""

from __future__ import annotations

from ambientmesh.protocol.frames import DEFAULT_WINDOW, MAX_WINDOW, ErrorCode
from ambientmesh.protocol.reader import H2ConnectionError


class ConnectionWindows:
    """``send`` is what the peer lets us send; ``recv`` is the credit the peer still holds."""

    __slots__ = ("_batch", "_consumed", "recv", "send")

    def __init__(self, *, batch: int) -> None:
        self.send = DEFAULT_WINDOW
        self.recv = DEFAULT_WINDOW
        self._consumed = 0  # read off the connection, not yet granted back
        self._batch = batch

    def enlarge(self, size: int) -> int:
        """Grow the receive window to ``size``; returns the increment to announce (0: none)."""
        extra = size - DEFAULT_WINDOW
        self.recv += extra
        return extra

    def received(self, length: int) -> int:
        """Charge ``length`` DATA octets, whatever their stream's fate (§6.9.1); returns the
        credit to grant back now (0 while a batch builds up)."""
        if length > self.recv:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA exceeds connection window")
        self.recv -= length
        self._consumed += length
        if self._consumed < self._batch:
            return 0
        granted = self._consumed
        self.recv += granted
        self._consumed = 0
        return granted

    def credited(self, increment: int) -> None:
        """The peer sent WINDOW_UPDATE on stream 0."""
        if increment == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        self.send += increment
        if self.send > MAX_WINDOW:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow")
