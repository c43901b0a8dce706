"""Outbound tunnelling: an accepted plain TCP connection carried to its destination over HBONE."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError, ResourceBroken
from ambientmesh.hbone.errors import TunnelRefused, close_reason
from ambientmesh.hbone.pool import HbonePool, TunnelTarget
from ambientmesh.io.relay import Relay
from ambientmesh.io.result import RelayResult
from ambientmesh.io.sockets import set_reset_on_close
from ambientmesh.protocol import Headers, forwarded, traceparent


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPlan:
    """What ztunnel decided for one outbound connection."""

    target: TunnelTarget  # the peer's ip:15008, source credential, expected identities, key
    authority: str  # ":authority": the target ip:port (or host:port)
    headers: Headers = ()  # baggage, forwarded, traceparent, ... (see ``request_headers``)


def request_headers(
    *,
    client: str,
    host: str | None = None,
    baggage: str | None = None,
    trace_id: int | None = None,
    parent_id: int | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> Headers:
    """The headers ztunnel sends on every CONNECT: ``baggage`` (when given), ``forwarded``
    with the client's ``ip:port`` (and ``host=``), ``traceparent`` (when ids are given)."""
    headers: list[tuple[str, str]] = []
    if baggage:
        headers.append(("baggage", baggage))
    headers.append(("forwarded", forwarded(client, host=host)))
    if trace_id is not None and parent_id is not None:
        headers.append(("traceparent", traceparent(trace_id, parent_id)))
    headers.extend(extra)
    return tuple(headers)


async def proxy_outbound(
    downstream: socket.socket, plan: OutboundPlan, pool: HbonePool, *, clock: Clock | None = None
) -> RelayResult:
    """Tunnel ``downstream`` (accepted, owned from now on) and relay both ways until both
    halves close. Never raises for network failures: the result says what happened, and a
    connection that could not be tunnelled is reset, as ztunnel does."""
    clock = clock or pool.clock
    started = clock.monotonic()
    try:
        stream, response = await pool.open(plan.target, plan.authority, plan.headers)
    except MeshError as error:
        _reset(downstream)
        status = error.response_status if isinstance(error, TunnelRefused) else None
        return RelayResult(
            bytes_received=0,
            bytes_sent=0,
            duration=clock.monotonic() - started,
            reason=close_reason(error),
            error=error,
            status=status,
        )
    except BaseException:
        _reset(downstream)
        raise
    relay = Relay(clock=clock, started=started)
    relay.status = response.status
    stream.attach(relay.upstream)
    try:
        await asyncio.get_running_loop().connect_accepted_socket(
            lambda: relay.downstream, downstream
        )
    except OSError as error:
        downstream.close()
        relay.downstream.connection_lost(ResourceBroken(f"downstream socket unusable: {error}"))
    return await relay.wait()


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        set_reset_on_close(sock)
    sock.close()
