"""The stream table: open streams by id, and which ids were ever used (RFC 9113 §5.1.1)."""

from __future__ import annotations

from ambientmesh.protocol.stream import Stream

MAX_STREAM_ID = 2**31 - 1


class StreamTable(dict[int, Stream]):
    """Open streams by id. A frame for an id not in the table names either a closed stream
    (a stream error) or an idle one (a connection error); the ids used so far tell which.

    A dict, so the per-frame lookups on the data path cost what a dict lookup costs.
    """

    __slots__ = ("_local_parity", "last_peer", "next_local")

    def __init__(self, *, client: bool) -> None:
        super().__init__()
        self._local_parity = 1 if client else 0  # clients open odd streams, servers even
        self.next_local = 1
        self.last_peer = 0

    def is_local(self, stream_id: int) -> bool:
        """Whether our side opens streams with this id's parity."""
        return stream_id % 2 == self._local_parity

    def is_idle(self, stream_id: int) -> bool:
        """Whether a stream id names a stream that was never opened."""
        if self.is_local(stream_id):
            return stream_id >= self.next_local
        return stream_id > self.last_peer

    @property
    def ids_left(self) -> bool:
        """Whether a new local stream id is still available (ids are never reused)."""
        return self.next_local <= MAX_STREAM_ID

    def allocate_local(self) -> int:
        """The id of the next stream we open."""
        stream_id = self.next_local
        self.next_local += 2
        return stream_id
