"""Byte relays between two asyncio transports (TCP↔TCP, TCP↔tunnel stream).

Theory of operation. Each side is a BufferedProtocol reading into one read buffer shared by
every relay of the thread: safe, because a chunk is handed to the other side before the
callback returns, and it keeps an idle connection free of buffers. A chunk goes out by one
of three routes:

* a socket transport with nothing queued: written straight to its file descriptor (the
  same ``write(2)`` the transport would make), so the common case copies nothing;
* a transport that promises not to keep the data (``ZERO_COPY_WRITE``, tunnel streams):
  handed over as a view;
* anything else, or a socket that could not take all of it: copied into the transport,
  which then signals ``pause_writing`` and we stop reading the other side. So each
  direction buffers at most one chunk, and backpressure reaches the sender.

EOF on one side becomes a half-close (``write_eof``) on the other; the relay ends when both
directions have ended, or at once when either side resets, in which case the other side
is reset too (RST on a socket, RST_STREAM on a tunnel stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from typing import cast

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import MeshError, ResourceBroken, UpstreamReset
from ambientmesh.io.result import CloseReason, RelayResult
from ambientmesh.io.sockets import set_reset_on_close

READ_BUFFER_SIZE = 256 * 1024
# Extra-info key of transports whose write() never keeps a reference to the data it is given.
ZERO_COPY_WRITE = "ambientmesh.zero_copy_write"

_thread = threading.local()


def shared_read_buffer() -> memoryview:
    """The calling thread's read buffer, for protocols that consume each read before returning."""
    buffer: memoryview | None = getattr(_thread, "buffer", None)
    if buffer is None:
        buffer = _thread.buffer = memoryview(bytearray(READ_BUFFER_SIZE))
    return buffer


def abort_with_reset(transport: asyncio.BaseTransport) -> None:
    """Close at once, telling the peer it was an error: RST for sockets (SO_LINGER 0)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to reset
            set_reset_on_close(sock)
    transport.abort()  # type: ignore[attr-defined]


class RelaySide(asyncio.BufferedProtocol):
    """One end of a relay: reads its transport and writes into the other side's."""

    def __init__(self, relay: Relay, *, downstream: bool) -> None:
        self.relay = relay
        self.downstream = downstream
        self.peer: RelaySide = self
        self.transport: asyncio.Transport | None = None
        self.read_bytes = 0
        self.read_eof = False
        self.lost = False
        self._fd = -1
        self._zero_copy = False
        self._early: bytearray | None = None  # read before the other side was attached
        self._buffer = shared_read_buffer()

    # ------------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only look-alikes.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._fd = sock.fileno()
            # Pause the sender as soon as anything is queued: one chunk per direction at most.
            transport.set_write_buffer_limits(high=0)
        self._zero_copy = bool(transport.get_extra_info(ZERO_COPY_WRITE))
        self.peer._flush_early()
        if self.peer.lost:
            self.relay.finish_late_side(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.view_received(self._buffer[:nbytes])

    def data_received(self, data: bytes) -> None:
        self.view_received(memoryview(data))

    def view_received(self, view: memoryview) -> None:
        """Bytes read from this side; ``view`` is valid only during the call."""
        self.read_bytes += len(view)
        peer = self.peer
        if peer.transport is None:
            self._stash(view)
        else:
            peer.write(view)

    def eof_received(self) -> bool:
        self.read_eof = True
        if self.peer.transport is not None:
            self.peer.half_close()
        self.relay.side_ended()
        return True  # keep our transport open: the other direction may still be running

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fd = -1
        self.relay.side_lost(self, exc)

    def pause_writing(self) -> None:
        if self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer.transport is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()

    # ------------------------------------------------------------------ writing

    def write(self, view: memoryview) -> None:
        transport = self.transport
        assert transport is not None
        if transport.is_closing():
            return  # a reset is under way; these bytes have nowhere to go
        if self._fd >= 0 and not transport.get_write_buffer_size():
            try:
                sent = os.write(self._fd, view)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the transport meets the same error below and reports it
            if sent == len(view):
                return
            view = view[sent:]
        transport.write(view if self._zero_copy else bytes(view))

    def half_close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()

    # ------------------------------------------------------------------ before both are attached

    def _stash(self, view: memoryview) -> None:
        if self._early is None:
            self._early = bytearray()
        self._early += view
        assert self.transport is not None
        self.transport.pause_reading()

    def _flush_early(self) -> None:
        """Our peer just got its transport: pass on what we read meanwhile, and any EOF."""
        if self.transport is None:
            return
        if self._early is not None:
            early, self._early = self._early, None
            self.peer.write(memoryview(early))
            self.transport.resume_reading()
        if self.read_eof:
            self.peer.half_close()


class Relay:
    """Two RelaySides joined back to back. Attach a transport to each (``downstream`` is the
    side that was accepted), then ``await wait()``."""

    def __init__(self, *, clock: Clock | None = None, started: float | None = None) -> None:
        self._clock = clock or SystemClock()
        self.downstream = RelaySide(self, downstream=True)
        self.upstream = RelaySide(self, downstream=False)
        self.downstream.peer = self.upstream
        self.upstream.peer = self.downstream
        self._started = self._clock.monotonic() if started is None else started
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reason: CloseReason | None = None
        self._error: MeshError | None = None
        self.status: int | None = None

    def side_ended(self) -> None:
        if self.downstream.read_eof and self.upstream.read_eof:
            for side in (self.downstream, self.upstream):
                if side.transport is not None and not side.transport.is_closing():
                    side.transport.close()  # flushes what is queued, then closes

    def side_lost(self, side: RelaySide, exc: Exception | None) -> None:
        peer = side.peer
        if exc is not None and self._reason is None:
            self._reason = (
                CloseReason.DOWNSTREAM_RESET if side.downstream else CloseReason.UPSTREAM_RESET
            )
            self._error = _as_mesh_error(exc, downstream=side.downstream)
            if peer.transport is not None and not peer.lost:
                abort_with_reset(peer.transport)
        elif peer.transport is not None and not peer.transport.is_closing():
            # This side is gone without a reset: finish the other one gracefully.
            peer.half_close()
            peer.transport.close()
        if self.downstream.lost and self.upstream.lost and not self._done.done():
            self._done.set_result(None)

    def finish_late_side(self, side: RelaySide) -> None:
        """``side`` was attached after its peer had already gone: end it the same way."""
        assert side.transport is not None
        if self._reason is not None:
            abort_with_reset(side.transport)
        else:
            side.half_close()
            side.transport.close()

    def abort(self) -> None:
        """Reset both sides now (shutdown, drain deadline)."""
        if self._reason is None:
            self._reason = CloseReason.CANCELLED
        for side in (self.downstream, self.upstream):
            if side.transport is not None and not side.lost:
                abort_with_reset(side.transport)

    async def wait(self) -> RelayResult:
        """Until both sides are closed; cancelling resets both."""
        try:
            await self._done
        except asyncio.CancelledError:
            self.abort()
            raise
        return self.result()

    def result(self) -> RelayResult:
        return RelayResult(
            bytes_received=self.downstream.read_bytes,
            bytes_sent=self.upstream.read_bytes,
            duration=self._clock.monotonic() - self._started,
            reason=self._reason or CloseReason.COMPLETED,
            error=self._error,
            status=self.status,
        )


def _as_mesh_error(exc: BaseException, *, downstream: bool) -> MeshError:
    if isinstance(exc, MeshError):
        return exc
    if downstream:
        return ResourceBroken(f"downstream connection broke: {exc!r}")
    return UpstreamReset(f"upstream connection broke: {exc!r}")


async def relay_sockets(
    downstream: socket.socket, upstream: socket.socket, *, clock: Clock | None = None
) -> RelayResult:
    """Relay two connected sockets until both halves close; takes ownership of both."""
    loop = asyncio.get_running_loop()
    relay = Relay(clock=clock)
    try:
        await loop.connect_accepted_socket(lambda: relay.downstream, downstream)
    except BaseException:
        downstream.close()
        upstream.close()
        raise
    try:
        await loop.connect_accepted_socket(lambda: relay.upstream, upstream)
    except BaseException:
        upstream.close()
        relay.abort()
        raise
    return await relay.wait()
