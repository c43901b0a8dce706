"""The client pool: CONNECT streams multiplexed over shared HBONE connections.

Connections are keyed like ztunnel's pool — (source identity, expected destination
identities, destination address, source IP) — so two workloads never share a connection and
a connection is only reused for the identities it was verified against. A connection takes
at most ``max_streams_per_connection`` streams (100) and never more than the peer's
SETTINGS_MAX_CONCURRENT_STREAMS; past that a new one is opened. One that received GOAWAY
takes no new streams; one without streams for ``pool_idle_timeout`` (5 min) is released.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import ResourceClosed
from ambientmesh.hbone.client import connect
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.hbone.connection import HboneConnection
from ambientmesh.hbone.errors import StreamRefused
from ambientmesh.hbone.stream import TunnelStream
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import client_context
from ambientmesh.io.sockets import SocketAddress, SocketFactory
from ambientmesh.protocol import ResponseReceived

_MAX_CONTEXTS = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolKey:
    source: Identity
    expected: frozenset[Identity]
    destination: SocketAddress
    source_ip: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TunnelTarget:
    """Where and as whom to tunnel: the peer's HBONE address and the identities it may have."""

    destination: SocketAddress  # the peer's ip:15008
    credential: Credential  # the source workload's certificate
    roots_pem: bytes
    expected: frozenset[Identity]  # the server must present one of these
    source_ip: str | None = None  # part of the pool key (and bound by a spoofing factory)
    socket_factory: SocketFactory | None = None

    @property
    def key(self) -> PoolKey:
        return PoolKey(
            source=self.credential.identity,
            expected=self.expected,
            destination=self.destination,
            source_ip=self.source_ip,
        )


class HbonePool:
    """Use as ``async with HbonePool() as pool``; connections live in the pool's task group."""

    def __init__(self, *, config: HboneConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or HboneConfig()
        self.clock = clock or SystemClock()
        self._connections: dict[PoolKey, list[HboneConnection]] = {}
        self._connecting: dict[PoolKey, asyncio.Future[HboneConnection]] = {}
        self._contexts: dict[tuple[Credential, bytes], ssl.SSLContext] = {}
        self._group: asyncio.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed = True
        for connection in self.connections():
            connection.close()
            if connection.maintenance is not None:
                connection.maintenance.cancel()
        assert self._group is not None
        await self._group.__aexit__(exc_type, exc, traceback)

    def connections(self, key: PoolKey | None = None) -> list[HboneConnection]:
        if key is not None:
            return list(self._connections.get(key, ()))
        return [c for group in self._connections.values() for c in group]

    async def open(
        self, target: TunnelTarget, authority: str, headers: Iterable[tuple[str, str]] = ()
    ) -> tuple[TunnelStream, ResponseReceived]:
        """A CONNECT stream answered 2xx. A stream the peer refused unprocessed (GOAWAY race)
        is retried once on another connection."""
        fields = tuple(headers)
        for attempt in range(2):
            connection = await self._connection(target)
            try:
                return await connection.request(authority, fields)
            except StreamRefused:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _connection(self, target: TunnelTarget) -> HboneConnection:
        if self._closed or self._group is None:
            raise ResourceClosed("HBONE pool is not open (use it as an async context manager)")
        key = target.key
        while True:
            for connection in self._connections.get(key, ()):
                if connection.usable:
                    return connection
            pending = self._connecting.get(key)
            if pending is None:
                break
            # Someone is already connecting for this key: share that connection (or error).
            await asyncio.wait({pending})
            if not pending.cancelled() and (error := pending.exception()) is not None:
                raise error
        return await self._dial(key, target)

    async def _dial(self, key: PoolKey, target: TunnelTarget) -> HboneConnection:
        assert self._group is not None
        pending: asyncio.Future[HboneConnection] = asyncio.get_running_loop().create_future()
        self._connecting[key] = pending
        try:
            connection = await connect(
                target.destination,
                context=self._context(target),
                expected=target.expected,
                config=self.config,
                clock=self.clock,
                socket_factory=target.socket_factory,
            )
        except Exception as error:
            pending.set_exception(error)
            pending.exception()  # waiters re-raise it; nobody else needs to see it
            raise
        except BaseException:
            pending.cancel()  # we were cancelled: waiters try for themselves
            raise
        finally:
            del self._connecting[key]
        self._connections.setdefault(key, []).append(connection)
        connection.maintenance = self._group.create_task(self._maintain(key, connection))
        pending.set_result(connection)
        return connection

    async def _maintain(self, key: PoolKey, connection: HboneConnection) -> None:
        try:
            await connection.maintain(idle_timeout=self.config.pool_idle_timeout)
            await connection.wait_closed()
        finally:
            group = self._connections.get(key, [])
            if connection in group:
                group.remove(connection)
            if not group:
                self._connections.pop(key, None)

    def _context(self, target: TunnelTarget) -> ssl.SSLContext:
        """Client contexts are costly to build (key and chain loading): one per credential."""
        cache_key = (target.credential, target.roots_pem)
        context = self._contexts.get(cache_key)
        if context is None:
            if len(self._contexts) >= _MAX_CONTEXTS:
                self._contexts.pop(next(iter(self._contexts)))
            context = self._contexts[cache_key] = client_context(
                target.credential, target.roots_pem
            )
        return context
