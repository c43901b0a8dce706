"""Running an admitted inbound connection: registered for re-authorization, relayed, counted,
logged.

Shared by the HBONE (15008) and plaintext (15006) listeners. The relay is ours (not the HBONE
server's), so a policy change can reset both of its sides at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from ambientmesh.hbone.timing import wait_until
from ambientmesh.io.relay import Relay
from ambientmesh.io.result import RelayResult
from ambientmesh.ztunnel.connections import LiveConnection
from ambientmesh.ztunnel.context import ProxyContext
from ambientmesh.ztunnel.inbound import InboundPlan, InboundRejection
from ambientmesh.ztunnel.model import SocketAddr
from ambientmesh.ztunnel.outcomes import relay_outcome
from ambientmesh.ztunnel.telemetry import ConnectionOutcome, Reporter, ResponseFlag

# How long a tunnel we answered 200 may take to be attached to its relay before we give up on
# it (the HBONE server attaches it right after our answer; this only bounds a vanished stream).
_ATTACH_GRACE = 5.0


class InboundRelays:
    """Relays of one pod's inbound connections; tasks live in the pod's TaskGroup."""

    def __init__(self, context: ProxyContext, group: asyncio.TaskGroup) -> None:
        self._ctx = context
        self._group = group

    def start(self, plan: InboundPlan, relay: Relay, attached: asyncio.Future[bool]) -> None:
        """Track a relay whose downstream (the tunnel) is attached once ``attached`` resolves."""
        connection = self._admit(plan, relay)
        self._group.create_task(self._finish(plan, relay, connection, attached))

    async def run(self, plan: InboundPlan, relay: Relay) -> None:
        """Track a relay whose two sides are attached already, until it ends."""
        await self._relay(plan, relay, self._admit(plan, relay))

    def reject(self, rejection: InboundRejection, *, src: SocketAddr, dst: SocketAddr) -> None:
        """Log (and, past the early checks, count) a refused inbound connection."""
        if rejection.response_flag is None or rejection.record is None:
            self._ctx.access_log.failed(src, dst, Reporter.DESTINATION, rejection.reason)
            return
        self._ctx.metrics.rejected(rejection.record, rejection.response_flag, rejection.reason)
        outcome = ConnectionOutcome(response_flag=rejection.response_flag, error=rejection.reason)
        self._ctx.access_log.complete(rejection.record, outcome)

    def _admit(self, plan: InboundPlan, relay: Relay) -> LiveConnection:
        self._ctx.metrics.opened(plan.record)
        return self._ctx.connections.add(plan, relay.abort)

    async def _finish(
        self,
        plan: InboundPlan,
        relay: Relay,
        connection: LiveConnection,
        attached: asyncio.Future[bool],
    ) -> None:
        if not attached.done():
            await wait_until(attached, self._ctx.clock, _ATTACH_GRACE)
        if not attached.done():
            # The client went away before our answer: nothing will ever read this relay.
            attached.cancel()
            relay.abort()
            self._done(plan, connection, relay.result())
            return
        await self._relay(plan, relay, connection)

    async def _relay(self, plan: InboundPlan, relay: Relay, connection: LiveConnection) -> None:
        try:
            await relay.wait()
        finally:
            self._done(plan, connection, relay.result())

    def _done(self, plan: InboundPlan, connection: LiveConnection, result: RelayResult) -> None:
        self._ctx.connections.remove(connection)
        outcome = relay_outcome(result)
        if connection.denied:
            outcome = ConnectionOutcome(
                response_flag=ResponseFlag.DENY,
                client_to_server_bytes=outcome.client_to_server_bytes,
                server_to_client_bytes=outcome.server_to_client_bytes,
                duration_ms=outcome.duration_ms,
                error=f"connection closed: no longer allowed ({connection.reason})",
            )
        with contextlib.suppress(Exception):  # telemetry must never fail a connection's end
            self._ctx.metrics.closed(plan.record, outcome)
            self._ctx.access_log.complete(plan.record, outcome)
