"""Whole messages with file descriptors over unix SOCK_SEQPACKET sockets, on the event loop."""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from ambientmesh.errors import RemoteProtocolError, ResourceBroken, ResourceClosed, UpstreamTimeout

_INT_SIZE = array.array("i").itemsize


@dataclass(frozen=True, slots=True, kw_only=True)
class Datagram:
    """One received message; the receiver owns `fds` and must close them."""

    data: bytes
    fds: tuple[int, ...]

    def close_fds(self) -> None:
        for fd in self.fds:
            os.close(fd)


def seqpacket_socket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


class SeqpacketChannel:
    """One connected SOCK_SEQPACKET socket. Not safe for concurrent senders or receivers:
    ZDS is strictly request then ack, and each side drives its channel from one task."""

    def __init__(self, sock: socket.socket, *, max_message: int) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._max_message = max_message
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        return self._sock.fileno()

    async def send(self, data: bytes, fds: Sequence[int] = (), *, within: float) -> None:
        """Send one message, with `fds` as SCM_RIGHTS ancillary data; the caller keeps its fds."""
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        async with _deadline(within, "sending a ZDS message"):
            while True:
                self._check_open()
                try:
                    self._sock.sendmsg([data], ancillary)
                    return
                except BlockingIOError:
                    await self.wait_writable()
                except OSError as exc:
                    raise ResourceBroken(
                        f"ZDS peer went away while sending: {exc.strerror}"
                    ) from exc

    async def recv(self, *, within: float | None, max_fds: int = 1) -> Datagram:
        """Receive one message; raises ResourceBroken on end of stream."""
        async with _deadline(within, "waiting for a ZDS message"):
            while True:
                self._check_open()
                try:
                    return self._recv_now(max_fds)
                except BlockingIOError:
                    await self.wait_readable()

    def _recv_now(self, max_fds: int) -> Datagram:
        # Room for one fd more than allowed, so an excess is seen (and closed) rather than dropped.
        ancbuf = socket.CMSG_SPACE((max_fds + 1) * _INT_SIZE)
        try:
            data, ancdata, flags, _ = self._sock.recvmsg(
                self._max_message + 1, ancbuf, socket.MSG_CMSG_CLOEXEC
            )
        except BlockingIOError:
            raise
        except OSError as exc:
            raise ResourceBroken(f"ZDS peer went away while receiving: {exc.strerror}") from exc
        received = Datagram(data=data, fds=_fds_from(ancdata))
        problem = _problem(received, flags, max_fds, self._max_message)
        if problem is not None:
            received.close_fds()
            if not data and not ancdata:
                raise ResourceBroken(problem)
            raise RemoteProtocolError(problem)
        return received

    async def wait_readable(self) -> None:
        await wait_fd(self._sock.fileno(), readable=True)

    async def wait_writable(self) -> None:
        await wait_fd(self._sock.fileno(), readable=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ResourceClosed("ZDS channel is closed")


def set_once(future: asyncio.Future[None]) -> None:
    """A reader/writer callback that completes `future` the first time the fd is ready."""
    if not future.done():
        future.set_result(None)


async def wait_fd(fd: int, *, readable: bool) -> None:
    """Wait until the event loop reports `fd` readable (or writable)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    add: Callable[..., object] = loop.add_reader if readable else loop.add_writer
    remove: Callable[[int], bool] = loop.remove_reader if readable else loop.remove_writer
    add(fd, set_once, future)
    try:
        await future
    finally:
        remove(fd)


def _fds_from(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, ...]:
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _INT_SIZE
            fds.frombytes(payload[:usable])
    return tuple(fds)


def _problem(received: Datagram, flags: int, max_fds: int, max_message: int) -> str | None:
    if not received.data and not received.fds:
        return "ZDS peer closed the connection"
    if flags & socket.MSG_TRUNC or len(received.data) > max_message:
        return f"ZDS message larger than {max_message} bytes"
    if flags & socket.MSG_CTRUNC or len(received.fds) > max_fds:
        return f"ZDS message carried more than {max_fds} file descriptor(s)"
    return None


@contextlib.asynccontextmanager
async def _deadline(within: float | None, what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(within):
            yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"timed out after {within}s {what}") from exc
