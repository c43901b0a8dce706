"""The cluster DNS server: UDP and TCP on sockets the caller binds (10.96.0.10:53 in the router).

Queries are answered by `dnszone.answer` from the current `Zone`; `update` swaps the zone in
one assignment, so every query sees either the old records or the new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import cast

from ambientmesh.runtime.dnszone import Zone, answer

log = logging.getLogger(__name__)

TCP_IDLE_TIMEOUT = 10.0  # seconds a TCP client may stay silent between queries
TCP_MAX_CONNECTIONS = 256


class ClusterDns:
    """Serves one zone; `serve` runs until cancelled."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self._tcp_slots = asyncio.Semaphore(TCP_MAX_CONNECTIONS)

    def update(self, zone: Zone) -> None:
        self.zone = zone

    async def serve(self, udp: socket.socket, tcp: socket.socket) -> None:
        """Answer on the bound `udp` socket and the listening `tcp` socket until cancelled."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpAnswerer(self), sock=udp)
        try:
            server = await asyncio.start_server(self._serve_tcp, sock=tcp)
            async with server:
                await server.serve_forever()
        finally:
            transport.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tcp_slots.locked():
            writer.close()
            return
        async with self._tcp_slots:
            try:
                while True:
                    async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                        header = await reader.readexactly(2)
                        query = await reader.readexactly(int.from_bytes(header, "big"))
                    reply = answer(query, self.zone, udp=False)
                    if reply is None:
                        break
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                        await writer.drain()
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                pass  # the client left, stalled, or broke the connection: nothing to answer
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


class _UdpAnswerer(asyncio.DatagramProtocol):
    def __init__(self, server: ClusterDns) -> None:
        self._server = server
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio's subclasses, only alike.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = answer(data, self._server.zone, udp=True)
        except Exception:  # a bug must cost one query, not the server
            log.exception("cluster DNS: cannot answer a %d-byte query from %s", len(data), addr)
            return
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("cluster DNS: %s", exc)
