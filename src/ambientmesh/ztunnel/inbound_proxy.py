"""Port 15008 of a pod: HBONE CONNECT streams decided by ``plan_inbound`` (reference 1.6, 2.5).

Per stream: wait for the pod's Workload, plan (400/401/503 on refusal), connect to the
application from inside the pod with the client's IP as source (503 and flag CONNECT if that
fails), write the PROXY header if the workload asks for one, then answer 200 with ``baggage``
and relay. The relay is registered so a policy change can close it.
"""

from __future__ import annotations

import asyncio

from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.errors import MeshError
from ambientmesh.hbone.server import Decision, InboundRequest, Reject, Terminate
from ambientmesh.io.relay import Relay
from ambientmesh.ztunnel.context import ProxyContext
from ambientmesh.ztunnel.inbound import HboneRequest, InboundPlan, InboundRejection, plan_inbound
from ambientmesh.ztunnel.inbound_relays import InboundRelays
from ambientmesh.ztunnel.model import SocketAddr
from ambientmesh.ztunnel.pod_network import PodNetwork
from ambientmesh.ztunnel.upstream import connect, proxy_v2_header


class InboundProxy:
    """The HBONE server's handler for one pod."""

    def __init__(
        self, context: ProxyContext, pod: WorkloadInfo, network: PodNetwork, relays: InboundRelays
    ) -> None:
        self._ctx = context
        self._pod = pod
        self._network = network
        self._relays = relays

    async def handle(self, request: InboundRequest) -> Decision:
        hbone = HboneRequest(
            method="CONNECT",  # the HBONE server answers anything else with 400 itself
            authority=str(request.authority),
            local=SocketAddr.of(*request.local_address),
            peer=SocketAddr.of(*request.peer_address),
            peer_identity=request.peer_identity,
            headers=request.headers,
        )
        local = await self._ctx.pod_workload(self._pod)
        planned = plan_inbound(self._ctx.state, local, hbone)
        if isinstance(planned, InboundRejection):
            return self._refuse(planned, hbone)
        return await self._forward(planned, hbone)

    async def _forward(self, plan: InboundPlan, request: HboneRequest) -> Decision:
        loop = asyncio.get_running_loop()
        factory = self._network.upstream(str(plan.source_ip))
        try:
            upstream = await connect(factory, plan.upstream, self._ctx.config.connect_timeout)
        except MeshError as error:
            return self._refuse(plan.connect_failed(error.message), request)
        relay = Relay(clock=self._ctx.clock)
        try:
            if plan.proxy_protocol is not None:
                await loop.sock_sendall(upstream, proxy_v2_header(plan.proxy_protocol))
            await loop.connect_accepted_socket(lambda: relay.upstream, upstream)
        except OSError as error:
            upstream.close()
            return self._refuse(plan.connect_failed(str(error)), request)
        attached: asyncio.Future[bool] = loop.create_future()

        def attach() -> asyncio.BaseProtocol:
            if not attached.done():
                attached.set_result(True)
            return relay.downstream

        self._relays.start(plan, relay, attached)
        return Terminate(protocol_factory=attach, headers=plan.response_headers)

    def _refuse(self, rejection: InboundRejection, request: HboneRequest) -> Reject:
        self._relays.reject(rejection, src=request.peer, dst=request.local)
        return Reject(status=rejection.status)
