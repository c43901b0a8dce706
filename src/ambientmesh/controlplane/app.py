"""The ``ambientmesh control-plane`` process: store, API server, CA, discovery and controllers.

One TaskGroup runs everything: the store's group committer, the API server on
``<run>/api.sock``, one ``grpc.aio`` server for the certificate service and discovery on
``<run>/xds.sock`` (and TCP 15012 when asked), the informers feeding the ambient computation,
and the controllers. Discovery streams are held until every informer has listed once. When
``stop`` is set the gRPC server drains, the API server closes and the store commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.informer import Informer
from ambientmesh.apiserver.listeners import bind_unix
from ambientmesh.apiserver.server import ApiServer
from ambientmesh.clock import Clock
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex
from ambientmesh.controlplane.ambient.inputs import KINDS
from ambientmesh.controlplane.ca_service import (
    CertificateService,
    add_certificate_service,
    ca_status_routes,
    caller_node,
    server_credentials,
)
from ambientmesh.controlplane.controllers import Controllers
from ambientmesh.controlplane.discovery import DiscoveryFeed
from ambientmesh.controlplane.waypoint_objects import WaypointSettings
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.resources import kinds
from ambientmesh.store.aio import AsyncStore
from ambientmesh.store.store import Store, StoreConfig
from ambientmesh.xds.server import SERVER_OPTIONS, DeltaDiscoveryServer
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, Peer

log = logging.getLogger(__name__)

_API_VERSIONS = {
    "Namespace": "v1",
    "Node": "v1",
    "Pod": "v1",
    "Service": "v1",
    "Gateway": "gateway.networking.k8s.io/v1",
    "AuthorizationPolicy": "security.istio.io/v1",
    "PeerAuthentication": "security.istio.io/v1",
    "ServiceEntry": "networking.istio.io/v1",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlPlaneSettings:
    state_dir: Path
    run_dir: Path
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    service_cidr: str = "10.96.0.0/16"
    grpc_port: int | None = None  # 15012 to also serve CA and discovery over TCP
    drain_seconds: float = 5.0

    @property
    def api_socket(self) -> Path:
        return self.run_dir / "api.sock"

    @property
    def xds_socket(self) -> Path:
        return self.run_dir / "xds.sock"


async def run_control_plane(
    settings: ControlPlaneSettings,
    *,
    clock: Clock,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None = None,
) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.run_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    ca = CertificateAuthority.open(
        settings.state_dir, settings=CaSettings(trust_domain=settings.trust_domain), clock=clock
    )
    store = AsyncStore(
        Store(
            settings.state_dir / "store.db",
            clock=clock,
            config=StoreConfig(service_cidr=settings.service_cidr),
        )
    )
    index = AmbientIndex(
        MeshConfig(trust_domain=settings.trust_domain, cluster_domain=settings.cluster_domain)
    )

    def authenticate(context: grpc.aio.ServicerContext) -> Peer:
        node = caller_node(context, trust_domain=settings.trust_domain, clock=clock)
        return Peer(node=node.node, identity=str(node))

    discovery = DeltaDiscoveryServer(
        authenticate=authenticate,
        type_order=(AUTHORIZATION_TYPE_URL, ADDRESS_TYPE_URL),
        ready=False,
    )
    feed = DiscoveryFeed(index, discovery)
    api = ApiServer(store, clock=clock, extra_routes=[*ca_status_routes(ca), *feed.routes()])
    grpc_server = _grpc_server(settings, ca, discovery, feed)
    try:
        listeners = [bind_unix(settings.api_socket)]
        async with asyncio.TaskGroup() as tasks:
            committer = tasks.create_task(store.run())
            serving = tasks.create_task(api.serve(listeners))
            await grpc_server.start()
            client = AsyncApiClient(ServerAddress(socket=settings.api_socket))
            # Waypoint pods run on this host (local runtime) and reach us on our socket.
            waypoint = WaypointSettings(control_plane_address=f"unix:{settings.xds_socket}")
            informers, controllers = _wire(client, index, feed, waypoint, clock)
            workers = [tasks.create_task(informer.run()) for informer in informers]
            workers.append(tasks.create_task(controllers.run()))
            workers.append(tasks.create_task(_open_when_synced(feed, informers, on_ready)))
            await stop.wait()
            log.info("draining: closing discovery and certificate streams")
            await grpc_server.stop(settings.drain_seconds)
            for worker in workers:
                worker.cancel()
            await client.aclose()
            api.stop()
            await serving
            await store.close()
            await committer
    finally:
        store.shutdown()
        ca.flush()


def _grpc_server(
    settings: ControlPlaneSettings,
    ca: CertificateAuthority,
    discovery: DeltaDiscoveryServer,
    feed: DiscoveryFeed,
) -> grpc.aio.Server:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    add_certificate_service(
        server, CertificateService(ca, identity_scheduled=feed.identity_scheduled)
    )
    server.add_generic_rpc_handlers((discovery.rpc_handler(),))
    credentials = server_credentials(ca)
    server.add_secure_port(f"unix:{settings.xds_socket}", credentials)
    if settings.grpc_port is not None:
        server.add_secure_port(f"[::]:{settings.grpc_port}", credentials)
    return server


def _wire(
    client: AsyncApiClient,
    index: AmbientIndex,
    feed: DiscoveryFeed,
    waypoint: WaypointSettings,
    clock: Clock,
) -> tuple[list[Informer], Controllers]:
    """One informer per kind the computation reads, feeding it and the controllers."""
    informers = {
        kind: Informer(client, kinds.lookup(_API_VERSIONS[kind], kind), clock=clock)
        for kind in KINDS
    }
    controllers = Controllers(client, index, informers, waypoint=waypoint, clock=clock)
    for kind, informer in informers.items():
        informer.add_handler(feed.handler(kind))
    informers["Gateway"].add_handler(controllers.on_gateway)
    informers["Pod"].add_handler(controllers.on_pod)
    feed.on_status = controllers.on_status
    return list(informers.values()), controllers


async def _open_when_synced(
    feed: DiscoveryFeed, informers: list[Informer], on_ready: Callable[[], None] | None
) -> None:
    for informer in informers:
        await informer.wait_synced()
    feed.server.ready.set()
    log.info(
        "discovery ready: %d addresses, %d authorizations",
        len(feed.index.addresses),
        len(feed.index.authorizations),
    )
    if on_ready is not None:
        on_ready()
