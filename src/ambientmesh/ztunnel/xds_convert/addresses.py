"""``Address`` resources (a workload or a service) to ``Workload`` and ``Service``.

A resource that fails is left out of its batch, so the last good version of it stays in force.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ambientmesh.errors import IdentityError, InvalidInput
from ambientmesh.identity.spiffe import Identity
from ambientmesh.proto import workload_pb2
from ambientmesh.ztunnel.model import (
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_TRUST_DOMAIN,
    ApplicationTunnel,
    ApplicationTunnelProtocol,
    AppProtocol,
    GatewayAddress,
    HealthPolicy,
    HealthStatus,
    IpFamilies,
    LoadBalancing,
    LoadBalancingMode,
    Locality,
    LocalityScope,
    NamespacedHostname,
    NetworkAddress,
    NetworkMode,
    Port,
    Service,
    TunnelProtocol,
    Workload,
    WorkloadType,
)
from ambientmesh.ztunnel.state import StateUpdate
from ambientmesh.ztunnel.xds_convert.fields import Converted, FieldReader, InvalidResource


def address_from_proto(message: workload_pb2.Address) -> Workload | Service:
    """Convert one ``Address`` resource: a workload or a service."""
    kind = message.WhichOneof("type")
    if kind == "workload":
        return workload_from_proto(message.workload)
    if kind == "service":
        return service_from_proto(message.service)
    raise InvalidResource("Address", "type", "has neither a workload nor a service")


def workload_from_proto(message: workload_pb2.Workload) -> Workload:
    r = FieldReader(f"Workload {message.uid or message.name or '<unnamed>'}")
    tunnel = None
    if message.HasField("application_tunnel"):
        tunnel = _application_tunnel(r, message.application_tunnel)
    capacity = message.capacity.value if message.HasField("capacity") else 1
    try:
        return Workload(
            uid=r.required("uid", message.uid),
            name=r.required("name", message.name),
            namespace=r.required("namespace", message.namespace),
            addresses=tuple(r.ip(f"addresses[{i}]", a) for i, a in enumerate(message.addresses)),
            hostname=message.hostname,
            network=message.network,
            tunnel_protocol=r.enum(
                "tunnel_protocol",
                TunnelProtocol,
                workload_pb2.TunnelProtocol,
                message.tunnel_protocol,
            ),
            trust_domain=message.trust_domain or DEFAULT_TRUST_DOMAIN,
            service_account=message.service_account or DEFAULT_SERVICE_ACCOUNT,
            waypoint=_gateway(r, "waypoint", message.waypoint)
            if message.HasField("waypoint")
            else None,
            network_gateway=(
                _gateway(r, "network_gateway", message.network_gateway)
                if message.HasField("network_gateway")
                else None
            ),
            node=message.node,
            canonical_name=message.canonical_name,
            canonical_revision=message.canonical_revision,
            workload_type=r.enum(
                "workload_type", WorkloadType, workload_pb2.WorkloadType, message.workload_type
            ),
            workload_name=message.workload_name,
            native_tunnel=message.native_tunnel,
            application_tunnel=tunnel,
            services=_service_ports(r, message.services),
            authorization_policies=tuple(
                r.required(f"authorization_policies[{i}]", name)
                for i, name in enumerate(message.authorization_policies)
            ),
            status=r.enum("status", HealthStatus, workload_pb2.WorkloadStatus, message.status),
            cluster_id=message.cluster_id,
            locality=Locality(
                region=message.locality.region,
                zone=message.locality.zone,
                subzone=message.locality.subzone,
            ),
            network_mode=r.enum(
                "network_mode", NetworkMode, workload_pb2.NetworkMode, message.network_mode
            ),
            capacity=capacity,
        )
    except IdentityError as error:
        raise r.fail("trust_domain/namespace/service_account", error.message) from None


def _gateway(r: FieldReader, path: str, gateway: workload_pb2.GatewayAddress) -> GatewayAddress:
    kind = gateway.WhichOneof("destination")
    if kind == "hostname":
        destination: NamespacedHostname | NetworkAddress = NamespacedHostname(
            namespace=r.required(f"{path}.hostname.namespace", gateway.hostname.namespace),
            hostname=r.required(f"{path}.hostname.hostname", gateway.hostname.hostname),
        )
    elif kind == "address":
        destination = _network_address(r, f"{path}.address", gateway.address)
    else:
        raise r.fail(path, "has neither a hostname nor an address")
    port = r.port(f"{path}.hbone_mtls_port", gateway.hbone_mtls_port)
    return GatewayAddress(destination=destination, hbone_mtls_port=port)


def _network_address(
    r: FieldReader, path: str, message: workload_pb2.NetworkAddress
) -> NetworkAddress:
    return NetworkAddress(network=message.network, address=r.ip(f"{path}.address", message.address))


def _application_tunnel(
    r: FieldReader, message: workload_pb2.ApplicationTunnel
) -> ApplicationTunnel:
    protocol = r.enum(
        "application_tunnel.protocol",
        ApplicationTunnelProtocol,
        workload_pb2.ApplicationTunnel.Protocol,
        message.protocol,
    )
    port = r.port("application_tunnel.port", message.port, allow_zero=True)
    return ApplicationTunnel(protocol=protocol, port=port or None)


def _ports(r: FieldReader, path: str, ports: Iterable[workload_pb2.Port]) -> tuple[Port, ...]:
    return tuple(
        Port(
            service_port=r.port(f"{path}[{i}].service_port", port.service_port),
            target_port=r.port(f"{path}[{i}].target_port", port.target_port, allow_zero=True),
            app_protocol=r.enum(
                f"{path}[{i}].app_protocol",
                AppProtocol,
                workload_pb2.AppProtocol,
                port.app_protocol,
            ),
        )
        for i, port in enumerate(ports)
    )


def _service_ports(
    r: FieldReader, services: Mapping[str, workload_pb2.PortList]
) -> dict[NamespacedHostname, tuple[Port, ...]]:
    converted: dict[NamespacedHostname, tuple[Port, ...]] = {}
    for name, port_list in services.items():
        try:
            key = NamespacedHostname.parse(name)
        except InvalidInput as error:
            raise r.fail(f"services[{name!r}]", error.message) from None
        converted[key] = _ports(r, f"services[{name!r}].ports", port_list.ports)
    return converted


def service_from_proto(message: workload_pb2.Service) -> Service:
    r = FieldReader(
        f"Service {message.namespace or '<no namespace>'}/{message.hostname or '<no host>'}"
    )
    lb = _load_balancing(r, message.load_balancing) if message.HasField("load_balancing") else None
    return Service(
        name=r.required("name", message.name),
        namespace=r.required("namespace", message.namespace),
        hostname=r.required("hostname", message.hostname),
        addresses=tuple(
            _network_address(r, f"addresses[{i}]", a) for i, a in enumerate(message.addresses)
        ),
        ports=_ports(r, "ports", message.ports),
        subject_alt_names=_sans(message.subject_alt_names),
        waypoint=_gateway(r, "waypoint", message.waypoint)
        if message.HasField("waypoint")
        else None,
        load_balancing=lb,
        ip_families=r.enum("ip_families", IpFamilies, workload_pb2.IPFamilies, message.ip_families),
        canonical=message.canonical,
        ingress_use_waypoint=message.ingress_use_waypoint,
    )


def _sans(names: Iterable[str]) -> tuple[Identity, ...]:
    # Like ztunnel, a SAN that is not a workload identity is ignored: it could never match a
    # peer we verify, so ignoring it only narrows whom we accept.
    identities = []
    for name in names:
        try:
            identities.append(Identity.parse(name))
        except IdentityError:
            continue
    return tuple(identities)


def _load_balancing(r: FieldReader, message: workload_pb2.LoadBalancing) -> LoadBalancing:
    scopes = workload_pb2.LoadBalancing.Scope
    return LoadBalancing(
        routing_preference=tuple(
            r.enum(f"load_balancing.routing_preference[{i}]", LocalityScope, scopes, scope)
            for i, scope in enumerate(message.routing_preference)
        ),
        mode=r.enum(
            "load_balancing.mode",
            LoadBalancingMode,
            workload_pb2.LoadBalancing.Mode,
            message.mode,
            renames={"UNSPECIFIED_MODE": "STANDARD"},
        ),
        health_policy=r.enum(
            "load_balancing.health_policy",
            HealthPolicy,
            workload_pb2.LoadBalancing.HealthPolicy,
            message.health_policy,
        ),
    )


def address_update(
    resources: Iterable[tuple[str, workload_pb2.Address]], removed: Iterable[str] = ()
) -> Converted:
    """Convert the ``Address`` resources of one delta response, keyed by resource name.

    A resource that fails is left out, so the last good version of it stays in force, and
    reported in ``errors``; the rest apply. A name that disagrees with the content (a workload
    is named by its uid, a service by ``<namespace>/<hostname>``) is an error too, since
    removals find resources by name.
    """
    workloads: list[Workload] = []
    services: list[Service] = []
    errors: list[InvalidResource] = []
    for name, message in resources:
        try:
            converted = address_from_proto(message)
        except InvalidResource as error:
            errors.append(error)
            continue
        expected = converted.uid if isinstance(converted, Workload) else str(converted.key)
        if name != expected:
            errors.append(InvalidResource(name, "", f"resource name should be {expected!r}"))
        elif isinstance(converted, Workload):
            workloads.append(converted)
        else:
            services.append(converted)
    update = StateUpdate(
        workloads=tuple(workloads), services=tuple(services), removed_addresses=tuple(removed)
    )
    return Converted(update=update, errors=tuple(errors))
