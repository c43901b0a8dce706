"""Port 15001 of a pod: captured outbound connections, planned by ``plan_outbound`` and carried
over HBONE with the pod's own identity, or in plaintext, or passed through (reference 2.3)."""

from __future__ import annotations

import logging
import socket

from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.errors import MeshError
from ambientmesh.hbone.outbound import OutboundPlan as TunnelPlan
from ambientmesh.hbone.outbound import proxy_outbound
from ambientmesh.hbone.pool import TunnelTarget
from ambientmesh.io.relay import relay_sockets
from ambientmesh.ztunnel.baggage import TraceParent
from ambientmesh.ztunnel.context import ProxyContext, peer_of
from ambientmesh.ztunnel.listeners import reset
from ambientmesh.ztunnel.model import SocketAddr, Workload
from ambientmesh.ztunnel.outbound import OutboundPlan, OutboundRejection, plan_outbound
from ambientmesh.ztunnel.outcomes import relay_outcome, tunnel_outcome
from ambientmesh.ztunnel.pod_network import PodNetwork
from ambientmesh.ztunnel.telemetry import ConnectionOutcome, Reporter, ResponseFlag
from ambientmesh.ztunnel.upstream import connect

log = logging.getLogger(__name__)


class OutboundProxy:
    """Serves the captured outbound connections of one pod."""

    def __init__(self, context: ProxyContext, pod: WorkloadInfo, network: PodNetwork) -> None:
        self._ctx = context
        self._pod = pod
        self._network = network

    async def handle(self, sock: socket.socket) -> None:
        """One accepted connection, until both directions are closed; never raises for
        network failures (the client is reset and the failure logged)."""
        try:
            client = peer_of(sock)
            destination = self._network.original_dst(sock)
        except (MeshError, OSError) as error:
            log.info("dropping an outbound connection without a destination: %s", error)
            reset(sock)
            return
        source = await self._ctx.pod_workload(self._pod)
        if source is None:
            self._fail(sock, client, destination, f"unknown source: no workload {self._who} yet")
            return
        plan = plan_outbound(self._ctx.state, source, destination, self._ctx.rng)
        if isinstance(plan, OutboundRejection):
            self._fail(sock, client, destination, plan.reason)
            return
        record = plan.record(client)
        self._ctx.metrics.opened(record)
        outcome = ConnectionOutcome(error="cut short: the proxy is shutting down")
        try:
            if plan.uses_hbone:
                outcome = await self._tunnel(sock, plan, source, client)
            else:
                outcome = await self._direct(sock, plan)
        finally:
            self._ctx.metrics.closed(record, outcome)
            self._ctx.access_log.complete(record, outcome)

    @property
    def _who(self) -> str:
        return f"{self._pod.namespace}/{self._pod.name}"

    async def _tunnel(
        self, sock: socket.socket, plan: OutboundPlan, source: Workload, client: SocketAddr
    ) -> ConnectionOutcome:
        """HBONE to ``plan.connect_to`` as the source pod, verified against the expected peers."""
        try:
            credential = await self._ctx.certificates.credential(source.identity)
        except MeshError as error:
            reset(sock)
            return ConnectionOutcome(response_flag=ResponseFlag.IDENTITY_ERROR, error=error.message)
        assert plan.authority is not None  # HBONE plans always carry one
        target = TunnelTarget(
            destination=self._network.hbone_address(plan.connect_to),
            credential=credential,
            roots_pem=self._ctx.certificates.roots_pem,
            expected=frozenset(plan.expected_identities),
            source_ip=str(source.addresses[0]) if source.addresses else None,
            socket_factory=self._network.outbound(),
        )
        headers = plan.connect_headers(client, TraceParent.generate(self._ctx.rng))
        tunnel = TunnelPlan(target=target, authority=str(plan.authority), headers=headers)
        result = await proxy_outbound(sock, tunnel, self._ctx.pool, clock=self._ctx.clock)
        return tunnel_outcome(result)

    async def _direct(self, sock: socket.socket, plan: OutboundPlan) -> ConnectionOutcome:
        """Plaintext to a workload outside the mesh, or passthrough to an unknown address."""
        try:
            upstream = await connect(
                self._network.outbound(), plan.connect_to, self._ctx.config.connect_timeout
            )
        except MeshError as error:
            reset(sock)
            return ConnectionOutcome(response_flag=ResponseFlag.CONNECT, error=error.message)
        result = await relay_sockets(sock, upstream, clock=self._ctx.clock)
        return relay_outcome(result)

    def _fail(
        self, sock: socket.socket, client: SocketAddr, destination: SocketAddr, error: str
    ) -> None:
        reset(sock)
        self._ctx.access_log.failed(client, destination, Reporter.SOURCE, error)
