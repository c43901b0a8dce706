"""Port 15006 of a pod: captured plaintext inbound connections (reference 2.6, 4.5).

Authorization runs with no peer identity, so any policy that needs one denies (this is where
PeerAuthentication STRICT bites); a denied connection is reset. An allowed one is connected to
the application from inside the pod with the client's IP as source, and relayed. There is no
waypoint enforcement here, as in Istio.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.errors import MeshError
from ambientmesh.io.relay import Relay
from ambientmesh.ztunnel.context import ProxyContext, peer_of
from ambientmesh.ztunnel.inbound import InboundRejection, plan_inbound_plaintext
from ambientmesh.ztunnel.inbound_relays import InboundRelays
from ambientmesh.ztunnel.listeners import reset
from ambientmesh.ztunnel.pod_network import PodNetwork
from ambientmesh.ztunnel.upstream import connect

log = logging.getLogger(__name__)


class PlaintextProxy:
    """Serves the captured plaintext inbound connections of one pod."""

    def __init__(
        self, context: ProxyContext, pod: WorkloadInfo, network: PodNetwork, relays: InboundRelays
    ) -> None:
        self._ctx = context
        self._pod = pod
        self._network = network
        self._relays = relays

    async def handle(self, sock: socket.socket) -> None:
        try:
            client = peer_of(sock)
            destination = self._network.original_dst(sock)
        except (MeshError, OSError) as error:
            log.info("dropping an inbound connection without a destination: %s", error)
            reset(sock)
            return
        local = await self._ctx.pod_workload(self._pod)
        plan = plan_inbound_plaintext(self._ctx.state, local, client, destination)
        if isinstance(plan, InboundRejection):
            self._relays.reject(plan, src=client, dst=destination)
            reset(sock)
            return
        factory = self._network.upstream(str(plan.source_ip))
        try:
            upstream = await connect(factory, plan.upstream, self._ctx.config.connect_timeout)
        except MeshError as error:
            self._relays.reject(plan.connect_failed(error.message), src=client, dst=destination)
            reset(sock)
            return
        relay = Relay(clock=self._ctx.clock)
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: relay.downstream, sock)
            await loop.connect_accepted_socket(lambda: relay.upstream, upstream)
        except OSError as error:
            relay.abort()
            sock.close()
            upstream.close()
            self._relays.reject(plan.connect_failed(str(error)), src=client, dst=destination)
            return
        await self._relays.run(plan, relay)
