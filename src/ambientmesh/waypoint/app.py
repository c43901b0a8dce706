"""The waypoint process (``ambientmesh waypoint --gateway <ns>/<name>``), one TaskGroup.

    node credential ─▶ CA ─▶ certificate for the waypoint's own identity (impersonation)
    control plane ─▶ discovery ─▶ State (the same resources a ztunnel gets)
    :15008 HBONE server ─▶ WaypointProxy (route) ─▶ L4Relay ─▶ new HBONE as the waypoint
    :15021 /healthz/ready (configuration, certificate and own workload known)

Its discovery and certificate plumbing is ztunnel's (``ambientmesh.ztunnel``): the waypoint is
a proxy of the same mesh, reading the same resources.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ambientmesh.clock import Clock
from ambientmesh.hbone.pool import HbonePool
from ambientmesh.hbone.server import HboneServer
from ambientmesh.identity.ca_client import CaClient
from ambientmesh.identity.manager import CertificateManager
from ambientmesh.io.sockets import SocketAddress, TcpSocketFactory
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.waypoint.config import WaypointConfig
from ambientmesh.waypoint.proxy import Dialer, L4Relay, WaypointProxy
from ambientmesh.xds.client import DeltaDiscoveryClient
from ambientmesh.ztunnel.app import (
    NodeIdentityFiles,
    control_plane_channel,
    load_node_credential,
)
from ambientmesh.ztunnel.certificates import WorkloadCertificates
from ambientmesh.ztunnel.http_site import bind, serve_site
from ambientmesh.ztunnel.model import SocketAddr, Workload
from ambientmesh.ztunnel.readiness import Readiness
from ambientmesh.ztunnel.xds_sync import XdsSync

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaypointEndpoints:
    hbone: tuple[str, int]
    readiness: tuple[str, int]


def pod_dialer() -> Dialer:
    """Inside the waypoint's pod: plain sockets, peers' HBONE where their address says."""

    def hbone_address(address: SocketAddr) -> SocketAddress:
        return str(address.ip), address.port

    return Dialer(socket_factory=TcpSocketFactory(), hbone_address=hbone_address)


def discovery_node(config: WaypointConfig) -> Node:
    node = Node(
        id=f"waypoint~{config.pod_name}~{config.pod_name}.{config.pod_namespace}~"
        f"{config.pod_namespace}.svc.cluster.local",
        cluster=config.cluster_id,
        user_agent_name="ambientmesh-waypoint",
    )
    node.metadata.update(
        {
            "NODE_NAME": config.node,
            "NAME": config.pod_name,
            "NAMESPACE": config.pod_namespace,
            "GATEWAY": f"{config.gateway_namespace}/{config.gateway_name}",
        }
    )
    return node


async def run_waypoint(
    config: WaypointConfig,
    *,
    clock: Clock,
    rng: random.Random,
    stop: asyncio.Event,
    dialer: Dialer | None = None,
    on_ready: Callable[[WaypointEndpoints], None] | None = None,
) -> None:
    """Serve until ``stop`` is set, then drain for at most ``config.drain_deadline``."""
    node = load_node_credential(config.credential_dir, config.node)
    hbone_sock = bind(config.hbone_address)
    readiness_sock = bind(config.readiness_address)
    ca_channel = control_plane_channel(config.ca_address, node)
    try:
        fetcher = CaClient(ca_channel, roots_pem=node.roots_pem, clock=clock, ttl=config.secret_ttl)
        async with (
            CertificateManager(fetcher, clock=clock, rng=rng) as manager,
            HbonePool(config=config.hbone, clock=clock) as pool,
            asyncio.TaskGroup() as group,
        ):
            waypoint = _Waypoint(config, node, manager, clock=clock, rng=rng)
            relay = waypoint.relay(pool, group, dialer or pod_dialer())
            server = waypoint.server(relay)
            discovery = waypoint.discovery()
            tasks = [
                group.create_task(discovery.run()),
                group.create_task(
                    serve_site("readiness", waypoint.readiness(discovery).routes(), readiness_sock)
                ),
                group.create_task(server.serve(hbone_sock)),
            ]
            if on_ready is not None:
                on_ready(
                    WaypointEndpoints(
                        hbone=_address(hbone_sock), readiness=_address(readiness_sock)
                    )
                )
            log.info("waypoint %s serving as %s", waypoint.name, config.identity)
            await stop.wait()
            await server.drain(config.drain_deadline)
            relay.close()
            for task in tasks:
                task.cancel()
    finally:
        hbone_sock.close()
        readiness_sock.close()
        await ca_channel.close()
    log.info("waypoint %s/%s stopped", config.gateway_namespace, config.gateway_name)


class _Waypoint:
    """The waypoint's parts, built from its configuration."""

    def __init__(
        self,
        config: WaypointConfig,
        node: NodeIdentityFiles,
        manager: CertificateManager,
        *,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.config = config
        self.node = node
        self.manager = manager
        self.clock = clock
        self.rng = rng
        self.name = f"{config.gateway_namespace}/{config.gateway_name}"
        self.certificates = WorkloadCertificates(
            manager, node.roots_pem, wait=config.certificate_wait
        )
        self.certificates.want("self", config.identity)  # fetched now, not on first use
        self.xds = XdsSync()

    def discovery(self) -> DeltaDiscoveryClient:
        return DeltaDiscoveryClient(
            connect=lambda: control_plane_channel(self.config.xds_address, self.node),
            node=discovery_node(self.config),
            watches=self.xds.watches(),
            clock=self.clock,
            rng=self.rng,
        )

    def own_workload(self) -> Workload | None:
        return self.xds.state.workload_named(self.config.pod_namespace, self.config.pod_name)

    async def me(self) -> Workload | None:
        """This pod's Workload, waiting for discovery to send it (like ztunnel, 5 s)."""
        return await self.xds.wait_for(
            self.own_workload, clock=self.clock, seconds=self.config.workload_wait
        )

    def relay(self, pool: HbonePool, group: asyncio.TaskGroup, dialer: Dialer) -> L4Relay:
        return L4Relay(
            pool=pool,
            credential=lambda: self.certificates.credential(self.config.identity),
            roots_pem=self.node.roots_pem,
            dialer=dialer,
            group=group,
            clock=self.clock,
            rng=self.rng,
            connect_timeout=self.config.connect_timeout,
        )

    def server(self, relay: L4Relay) -> HboneServer:
        proxy = WaypointProxy(state=self.xds.state, me=self.me, handler=relay, rng=self.rng)
        return HboneServer(
            handler=proxy.handle,
            tls=lambda _local: self.certificates.server_context(self.config.identity),
            trust_domain=self.config.trust_domain,
            config=self.config.hbone,
            clock=self.clock,
        )

    def readiness(self, discovery: DeltaDiscoveryClient) -> Readiness:
        readiness = Readiness()
        readiness.require("configuration", discovery.synced.is_set)
        readiness.require(
            "certificate", lambda: self.manager.current(self.config.identity) is not None
        )
        readiness.require("own workload", lambda: self.own_workload() is not None)
        return readiness


def _address(sock: socket.socket) -> tuple[str, int]:
    host, port, *_ = sock.getsockname()
    return str(host), int(port)
