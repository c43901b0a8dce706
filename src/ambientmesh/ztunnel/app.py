"""The ztunnel process: the composition root, one TaskGroup for everything.

    node credential ─▶ CA client ─▶ CertificateManager ─▶ WorkloadCertificates ─┐
    control plane ─▶ DeltaDiscoveryClient ─▶ XdsSync ─▶ State ──────────────────┤
    node agent ─▶ ZdsClient ─▶ PodProxies ─▶ PodProxy (15001, 15006, 15008) ◀────┘
                                               └─▶ HbonePool, ConnectionRegistry, metrics, logs
    127.0.0.1:15000 admin · :15020 metrics · :15021 readiness

Static stability: discovery and certificates keep their last good values while the control
plane is away (both clients reconnect with backoff), so existing and new connections to known
services keep working. A restart re-adopts pods: the node agent replays its snapshot to the new
process, which binds beside the old one (SO_REUSEPORT) while the old one drains.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from ambientmesh.capture.zds_client import ZdsClient
from ambientmesh.clock import Clock
from ambientmesh.errors import IdentityError, InvalidInput
from ambientmesh.hbone.pool import HbonePool
from ambientmesh.identity.ca_client import CONTROL_PLANE_NAME, CaClient, channel_credentials
from ambientmesh.identity.ca_files import CredentialFiles
from ambientmesh.identity.credential import NodeCredential
from ambientmesh.identity.manager import CertificateManager
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.xds.client import KEEPALIVE_OPTIONS, DeltaDiscoveryClient
from ambientmesh.ztunnel.accesslog import AccessLog
from ambientmesh.ztunnel.admin import AdminSources, admin_routes, metrics_routes
from ambientmesh.ztunnel.certificates import WorkloadCertificates
from ambientmesh.ztunnel.config import ZtunnelConfig
from ambientmesh.ztunnel.connections import ConnectionRegistry
from ambientmesh.ztunnel.context import ProxyContext
from ambientmesh.ztunnel.drain import drain
from ambientmesh.ztunnel.http_site import bind, serve_site
from ambientmesh.ztunnel.metrics import ProxyMetrics
from ambientmesh.ztunnel.pod_network import PodNetworkFactory, netns_pod_network
from ambientmesh.ztunnel.pods import PodProxies
from ambientmesh.ztunnel.readiness import Readiness
from ambientmesh.ztunnel.state import StateChange
from ambientmesh.ztunnel.waiting import wait_event
from ambientmesh.ztunnel.xds_sync import XdsSync

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoints:
    """Where the process's own servers listen (ports are known once bound)."""

    admin: tuple[str, int]
    metrics: tuple[str, int]
    readiness: tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeIdentityFiles:
    credential: NodeCredential
    roots_pem: bytes


def load_node_credential(directory: Path, node: str) -> NodeIdentityFiles:
    """The node credential a proxy authenticates with; a clear error if it is missing, bad or
    another node's."""
    files = CredentialFiles(directory=directory)
    try:
        chain, key, roots = files.read()
        credential = NodeCredential.from_pem(chain, key)
    except (IdentityError, OSError) as error:
        detail = error.message if isinstance(error, IdentityError) else str(error)
        raise InvalidInput(
            f"node credential in {directory} is not usable: {detail} "
            "(the runtime writes cert-chain.pem, key.pem and root-cert.pem there)"
        ) from None
    if credential.identity.node != node:
        raise InvalidInput(
            f"node credential in {directory} is for node {credential.identity.node!r}, not {node!r}"
        )
    return NodeIdentityFiles(credential=credential, roots_pem=roots)


def control_plane_channel(address: str, node: NodeIdentityFiles) -> grpc.aio.Channel:
    """mTLS to the control plane with the node credential; keepalives detect a dead peer."""
    return grpc.aio.secure_channel(
        address,
        channel_credentials(node.credential, node.roots_pem),
        options=[*KEEPALIVE_OPTIONS, ("grpc.ssl_target_name_override", CONTROL_PLANE_NAME)],
    )


def discovery_node(config: ZtunnelConfig) -> Node:
    """How we introduce ourselves on the discovery stream (Istio's ztunnel node id shape)."""
    pod = f"ztunnel-{config.node}"
    node = Node(
        id=f"ztunnel~{config.node}~{pod}.istio-system~istio-system.svc.cluster.local",
        cluster=config.cluster_id,
        user_agent_name="ambientmesh-ztunnel",
    )
    node.metadata.update(
        {
            "NODE_NAME": config.node,
            "NAME": pod,
            "NAMESPACE": "istio-system",
            "CLUSTER_ID": config.cluster_id,
            "NETWORK": config.network,
        }
    )
    return node


async def run_ztunnel(
    config: ZtunnelConfig,
    *,
    clock: Clock,
    rng: random.Random,
    stop: asyncio.Event,
    pod_network: PodNetworkFactory = netns_pod_network,
    on_ready: Callable[[Endpoints], None] | None = None,
) -> None:
    """Run until ``stop`` is set, then drain for at most ``config.drain_deadline`` and return."""
    node = load_node_credential(config.credential_dir, config.node)
    sockets = {
        "admin": bind(config.admin_address),
        "metrics": bind(config.metrics_address),
        "readiness": bind(config.readiness_address),
    }
    ca_channel = control_plane_channel(config.ca_address, node)
    inputs = _Inputs(
        config=config,
        node=node,
        sockets=sockets,
        ca_channel=ca_channel,
        pod_network=pod_network,
        on_ready=on_ready,
    )
    try:
        await _run(inputs, clock=clock, rng=rng, stop=stop)
    finally:
        for sock in sockets.values():
            sock.close()
        await ca_channel.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Inputs:
    config: ZtunnelConfig
    node: NodeIdentityFiles
    sockets: dict[str, socket.socket]
    ca_channel: grpc.aio.Channel
    pod_network: PodNetworkFactory
    on_ready: Callable[[Endpoints], None] | None


async def _run(inputs: _Inputs, *, clock: Clock, rng: random.Random, stop: asyncio.Event) -> None:
    config, node = inputs.config, inputs.node
    xds = XdsSync()
    fetcher = CaClient(
        inputs.ca_channel, roots_pem=node.roots_pem, clock=clock, ttl=config.secret_ttl
    )
    async with (
        CertificateManager(fetcher, clock=clock, rng=rng) as manager,
        HbonePool(config=config.hbone, clock=clock) as pool,
    ):
        context = ProxyContext(
            config=config,
            xds=xds,
            certificates=WorkloadCertificates(
                manager, node.roots_pem, wait=config.certificate_wait
            ),
            pool=pool,
            connections=ConnectionRegistry(),
            metrics=ProxyMetrics(xds_messages=xds.messages),
            access_log=AccessLog(clock=clock, log_format=config.log_format),
            clock=clock,
            rng=rng,
        )
        xds.subscribe(_on_change(context))
        discovery = DeltaDiscoveryClient(
            connect=lambda: control_plane_channel(config.xds_address, node),
            node=discovery_node(config),
            watches=xds.watches(),
            clock=clock,
            rng=rng,
        )
        async with asyncio.TaskGroup() as group:
            pods = PodProxies(
                context,
                group,
                inputs.pod_network,
                first_sync=lambda: wait_event(discovery.synced, clock, config.first_sync_wait),
            )
            zds = ZdsClient(str(config.zds_socket), pods, clock=clock, rng=rng)
            sources = AdminSources(
                context=context, pods=pods, discovery=discovery, zds=zds, request_stop=stop.set
            )
            background = [
                group.create_task(discovery.run(), name="discovery"),
                group.create_task(zds.run(), name="zds"),
                *_sites(group, inputs.sockets, sources),
            ]
            if inputs.on_ready is not None:
                inputs.on_ready(_endpoints(inputs.sockets))
            log.info("ztunnel for node %s started", config.node)
            await stop.wait()
            await drain(pods, context.connections, deadline=config.drain_deadline, clock=clock)
            for task in background:
                task.cancel()
            pods.abort_all()
    log.info("ztunnel for node %s stopped", config.node)


def _sites(
    group: asyncio.TaskGroup, sockets: dict[str, socket.socket], sources: AdminSources
) -> list[asyncio.Task[None]]:
    """Admin, metrics and readiness, each on its bound socket."""
    readiness = Readiness()
    readiness.require("configuration from the control plane", sources.discovery.synced.is_set)
    readiness.require("the pod snapshot from the node agent", lambda: sources.zds.ready)
    routes = {
        "admin": admin_routes(sources),
        "metrics": metrics_routes(sources.context.metrics),
        "readiness": readiness.routes(),
    }
    return [
        group.create_task(serve_site(name, routes[name], sockets[name]), name=name)
        for name in routes
    ]


def _on_change(context: ProxyContext) -> Callable[[StateChange], None]:
    """React to discovery: re-authorize live connections; prefetch this node's identities."""

    def changed(change: StateChange) -> None:
        if change.authorization_changed:
            closed = context.connections.recheck(context.state)
            if closed:
                log.info("closed %d connections that policy no longer allows", closed)
        for uid in change.workloads:
            _track_identity(context, uid)

    return changed


def _track_identity(context: ProxyContext, uid: str) -> None:
    workload = context.state.workload(uid)
    owner = f"node:{uid}"
    if (
        workload is not None
        and workload.node == context.config.node
        and workload.in_mesh
        and not workload.native_tunnel  # waypoints hold their own certificates
    ):
        context.certificates.want(owner, workload.identity)
    else:
        context.certificates.release(owner)


def _endpoints(sockets: dict[str, socket.socket]) -> Endpoints:
    def address(name: str) -> tuple[str, int]:
        host, port, *_ = sockets[name].getsockname()
        return str(host), int(port)

    return Endpoints(
        admin=address("admin"), metrics=address("metrics"), readiness=address("readiness")
    )
