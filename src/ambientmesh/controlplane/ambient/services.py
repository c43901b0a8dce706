"""Service and ServiceEntry -> Service; ServiceEntry endpoints -> Workloads (§3.2, §3.4)."""

from __future__ import annotations

import ipaddress

from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import (
    EntryEndpoint,
    Labels,
    ServiceEntryFacts,
    ServiceFacts,
)
from ambientmesh.proto import workload_pb2 as wpb

_APP_PROTOCOLS = {
    "http": wpb.HTTP11,
    "http2": wpb.HTTP2,
    "kubernetes.io/h2c": wpb.HTTP2,
    "grpc": wpb.GRPC,
    "tcp": wpb.TCP,
    "tls": wpb.TLS,
}
_PREFER_CLOSE = [
    wpb.LoadBalancing.NETWORK,
    wpb.LoadBalancing.REGION,
    wpb.LoadBalancing.ZONE,
    wpb.LoadBalancing.SUBZONE,
]


def resource_name(namespace: str, hostname: str) -> str:
    return f"{namespace}/{hostname}"


def _address(ip: str) -> wpb.NetworkAddress:
    return wpb.NetworkAddress(address=ipaddress.ip_address(ip).packed)


def load_balancing(service: ServiceFacts) -> wpb.LoadBalancing | None:
    """internalTrafficPolicy: Local keeps traffic on the node; trafficDistribution prefers
    close endpoints and fails over; publishNotReadyAddresses admits unhealthy endpoints."""
    health = (
        wpb.LoadBalancing.ALLOW_ALL if service.publish_not_ready else wpb.LoadBalancing.ONLY_HEALTHY
    )
    if service.internal_traffic_policy == "Local":
        return wpb.LoadBalancing(
            routing_preference=[wpb.LoadBalancing.NODE],
            mode=wpb.LoadBalancing.STRICT,
            health_policy=health,
        )
    if service.traffic_distribution in ("PreferClose", "PreferSameZone"):
        return wpb.LoadBalancing(
            routing_preference=_PREFER_CLOSE, mode=wpb.LoadBalancing.FAILOVER, health_policy=health
        )
    if service.traffic_distribution == "PreferSameNode":
        return wpb.LoadBalancing(
            routing_preference=[*_PREFER_CLOSE, wpb.LoadBalancing.NODE],
            mode=wpb.LoadBalancing.FAILOVER,
            health_policy=health,
        )
    if service.publish_not_ready:
        return wpb.LoadBalancing(health_policy=health)
    return None


def build_service(
    service: ServiceFacts,
    *,
    config: MeshConfig,
    waypoint: wpb.GatewayAddress | None,
    ingress_use_waypoint: bool,
) -> wpb.Address:
    ports = []
    for port in service.ports:
        target = port.target_port
        number = target if isinstance(target, int) else (port.port if not target else 0)
        if isinstance(target, str) and target.isdigit():
            number = int(target)
        ports.append(
            wpb.Port(
                service_port=port.port,
                target_port=number,
                app_protocol=_APP_PROTOCOLS.get(port.app_protocol.lower(), wpb.UNKNOWN),
            )
        )
    message = wpb.Service(
        name=service.meta.name,
        namespace=service.meta.namespace,
        hostname=config.service_hostname(service.meta.namespace, service.meta.name),
        addresses=[_address(ip) for ip in service.vips],
        ports=ports,
        ingress_use_waypoint=ingress_use_waypoint,
    )
    if waypoint is not None:
        message.waypoint.CopyFrom(waypoint)
    balancing = load_balancing(service)
    if balancing is not None:
        message.load_balancing.CopyFrom(balancing)
    return wpb.Address(service=message)


def build_entry_services(
    entry: ServiceEntryFacts, *, waypoint: wpb.GatewayAddress | None
) -> dict[str, wpb.Address]:
    """One Service per host of a ServiceEntry, keyed by resource name."""
    out = {}
    for host in entry.hosts:
        message = wpb.Service(
            name=entry.meta.name,
            namespace=entry.meta.namespace,
            hostname=host,
            addresses=[_address(ip) for ip in entry.vips],
            ports=[wpb.Port(service_port=p.number, target_port=p.target_port) for p in entry.ports],
        )
        if waypoint is not None:
            message.waypoint.CopyFrom(waypoint)
        out[resource_name(entry.meta.namespace, host)] = wpb.Address(service=message)
    return out


def entry_ports(entry: ServiceEntryFacts, endpoint: EntryEndpoint | None = None) -> wpb.PortList:
    ports = []
    for port in entry.ports:
        target = endpoint.ports.get(port.name, port.target_port) if endpoint else port.target_port
        ports.append(wpb.Port(service_port=port.number, target_port=target))
    return wpb.PortList(ports=ports)


def build_entry_workloads(entry: ServiceEntryFacts, config: MeshConfig) -> dict[str, wpb.Address]:
    """Inline endpoints become Workloads outside the mesh (plain TCP), keyed by uid."""
    out = {}
    ns, name = entry.meta.namespace, entry.meta.name
    for endpoint in entry.endpoints:
        uid = f"{config.cluster_id}/networking.istio.io/ServiceEntry/{ns}/{name}/{endpoint.address}"
        workload = wpb.Workload(
            uid=uid,
            name=name,
            namespace=ns,
            addresses=[ipaddress.ip_address(endpoint.address).packed],
            tunnel_protocol=wpb.NONE,
            service_account=endpoint.service_account or "default",
            workload_type=wpb.POD,
            workload_name=name,
            canonical_name=endpoint.labels.get("app", name),
            canonical_revision=endpoint.labels.get("version", "latest"),
            cluster_id=config.cluster_id,
        )
        for host in entry.hosts:
            workload.services[resource_name(ns, host)].CopyFrom(entry_ports(entry, endpoint))
        out[uid] = wpb.Address(workload=workload)
    return out


def ingress_use_waypoint(labels: Labels, namespace_labels: Labels) -> bool:
    """Label ``istio.io/ingress-use-waypoint=true`` on the Service or its namespace."""
    return "true" in (
        labels.get(L.INGRESS_USE_WAYPOINT),
        namespace_labels.get(L.INGRESS_USE_WAYPOINT),
    )
