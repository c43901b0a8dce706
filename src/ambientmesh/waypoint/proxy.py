"""The waypoint's HBONE handler: route each CONNECT, open the next hop, relay bytes.

The work is split in three so Layer 7 can be inserted later without touching the rest:

    HBONE server ─▶ WaypointProxy.handle: route (pure) ─▶ TunnelHandler.serve ─▶ next hop
                                                          (today: L4Relay; later: an HTTP
                                                           proxy choosing hops per request)

``L4Relay`` opens the next hop at once (a new HBONE stream as the waypoint's own identity, or a
plaintext connection), answers 200 and relays the bytes of the tunnel unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ambientmesh.clock import Clock
from ambientmesh.errors import ConnectFailed, MeshError
from ambientmesh.hbone.errors import TunnelRefused
from ambientmesh.hbone.pool import HbonePool, TunnelTarget
from ambientmesh.hbone.server import Decision, InboundRequest, Reject, Terminate
from ambientmesh.hbone.timing import wait_until
from ambientmesh.identity.credential import Credential
from ambientmesh.io.relay import Relay
from ambientmesh.io.sockets import SocketAddress, SocketFactory
from ambientmesh.waypoint.routing import RouteKind, WaypointRefusal, WaypointRoute, route
from ambientmesh.ztunnel.baggage import TraceParent, connect_headers
from ambientmesh.ztunnel.model import SocketAddr, Workload
from ambientmesh.ztunnel.state import State
from ambientmesh.ztunnel.upstream import connect

log = logging.getLogger(__name__)

_ATTACH_GRACE = 5.0  # see ztunnel.inbound_relays: bounds a tunnel that vanished before our 200


class TunnelHandler(Protocol):
    """Serves one routed tunnel (L4 today; an HTTP proxy later)."""

    async def serve(
        self, request: InboundRequest, route: WaypointRoute, me: Workload
    ) -> Decision: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialer:
    """How the waypoint reaches next hops: its socket factory, and where a peer's HBONE port is
    (the identity mapping in a pod; tests on loopback remap it)."""

    socket_factory: SocketFactory
    hbone_address: Callable[[SocketAddr], SocketAddress]


class WaypointProxy:
    """The HBONE server's handler."""

    def __init__(
        self,
        *,
        state: State,
        me: Callable[[], Awaitable[Workload | None]],
        handler: TunnelHandler,
        rng: random.Random,
    ) -> None:
        self._state = state
        self._me = me
        self._handler = handler
        self._rng = rng

    async def handle(self, request: InboundRequest) -> Decision:
        me = await self._me()
        if me is None:
            log.warning(
                "refusing CONNECT %s: this waypoint's workload is not known yet", request.authority
            )
            return Reject(status=503)
        decided = route(self._state, me, str(request.authority), self._rng)
        if isinstance(decided, WaypointRefusal):
            log.info(
                "refusing CONNECT %s from %s: %s",
                request.authority,
                request.peer_identity,
                decided.reason,
            )
            return Reject(status=decided.status)
        return await self._handler.serve(request, decided, me)


class L4Relay:
    """Opens the next hop and relays the tunnel's bytes unchanged."""

    def __init__(
        self,
        *,
        pool: HbonePool,
        credential: Callable[[], Awaitable[Credential]],
        roots_pem: bytes,
        dialer: Dialer,
        group: asyncio.TaskGroup,
        clock: Clock,
        rng: random.Random,
        connect_timeout: float = 10.0,
    ) -> None:
        self._pool = pool
        self._credential = credential
        self._roots = roots_pem
        self._dialer = dialer
        self._group = group
        self._clock = clock
        self._rng = rng
        self._connect_timeout = connect_timeout
        self._relays: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Cut every relay still running (after the drain deadline)."""
        for task in list(self._relays):
            task.cancel()

    async def serve(self, request: InboundRequest, route: WaypointRoute, me: Workload) -> Decision:
        relay = Relay(clock=self._clock)
        try:
            if route.kind is RouteKind.HBONE:
                await self._tunnel(relay, request, route, me)
            else:
                await self._plaintext(relay, route)
        except TunnelRefused as error:
            log.info("next hop %s refused the tunnel: %s", route.connect_to, error.message)
            return Reject(status=error.response_status)
        except MeshError as error:
            log.info("next hop %s unreachable: %s", route.connect_to, error.message)
            return Reject(status=503)
        attached: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def attach() -> asyncio.BaseProtocol:
            if not attached.done():
                attached.set_result(True)
            return relay.downstream

        task = self._group.create_task(self._finish(relay, attached, route))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        return Terminate(protocol_factory=attach)

    async def _tunnel(
        self, relay: Relay, request: InboundRequest, route: WaypointRoute, me: Workload
    ) -> None:
        assert route.authority is not None
        credential = await self._credential()
        target = TunnelTarget(
            destination=self._dialer.hbone_address(route.connect_to),
            credential=credential,
            roots_pem=self._roots,
            expected=frozenset(route.expected_identities),
            source_ip=str(me.addresses[0]) if me.addresses else None,
            socket_factory=self._dialer.socket_factory,
        )
        client = SocketAddr.of(*request.peer_address)
        headers = connect_headers(me, client, route.service, TraceParent.generate(self._rng))
        stream, _ = await self._pool.open(target, str(route.authority), headers)
        stream.attach(relay.upstream)

    async def _plaintext(self, relay: Relay, route: WaypointRoute) -> None:
        sock = await connect(self._dialer.socket_factory, route.connect_to, self._connect_timeout)
        try:
            await asyncio.get_running_loop().connect_accepted_socket(lambda: relay.upstream, sock)
        except OSError as error:
            sock.close()
            raise ConnectFailed(f"socket to {route.connect_to} unusable: {error}") from None

    async def _finish(
        self, relay: Relay, attached: asyncio.Future[bool], route: WaypointRoute
    ) -> None:
        if not attached.done():
            await wait_until(attached, self._clock, _ATTACH_GRACE)
        if not attached.done():
            attached.cancel()
            relay.abort()
            return
        result = await relay.wait()
        log.debug(
            "tunnel to %s via %s closed: %s, %d bytes in, %d out",
            route.target,
            route.connect_to,
            result.reason.value,
            result.bytes_received,
            result.bytes_sent,
        )
