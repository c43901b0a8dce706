"""Discovery protobufs (istio.workload.Address, istio.security.Authorization) to internal types.

Every problem raises ``InvalidResource`` naming the resource and the field path, so the xDS
client can NACK with a precise message and keep serving with what it had. Where ztunnel
silently drops a malformed policy value (an unset string match, a bad CIDR), we refuse the
whole policy instead: dropping a value from a match can only widen it. A policy that cannot be
parsed should then be replaced by ``fail_closed_authorization``, which denies everything the
policy could have covered (an unparseable policy denies).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ambientmesh.errors import IdentityError, InvalidInput
from ambientmesh.identity.spiffe import Identity
from ambientmesh.proto import authorization_pb2, workload_pb2
from ambientmesh.ztunnel.model import (
    DEFAULT_SERVICE_ACCOUNT,
    DEFAULT_TRUST_DOMAIN,
    ApplicationTunnel,
    ApplicationTunnelProtocol,
    AppProtocol,
    GatewayAddress,
    HealthPolicy,
    HealthStatus,
    IPAddress,
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
from ambientmesh.ztunnel.policy import (
    Action,
    Authorization,
    Clause,
    IPNetwork,
    Match,
    Rule,
    Scope,
    ServiceAccountMatch,
    StringMatch,
)
from ambientmesh.ztunnel.state import StateUpdate


class InvalidResource(InvalidInput):
    """A discovery resource that cannot be used; ``resource`` and ``path`` say where."""

    def __init__(self, resource: str, path: str, problem: str) -> None:
        where = f"{resource}: {path}" if path else resource
        super().__init__(f"{where}: {problem}")
        self.resource = resource
        self.path = path


class _Names(Protocol):
    def Name(self, number: Any) -> str: ...  # protobuf enum wrappers spell it so


_E = TypeVar("_E", bound=enum.Enum)


class _Reader:
    """Field-path bookkeeping for one resource, so every error says exactly where it is."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def fail(self, path: str, problem: str) -> InvalidResource:
        return InvalidResource(self.resource, path, problem)

    def required(self, path: str, value: str) -> str:
        if not value:
            raise self.fail(path, "is required")
        return value

    def enum(
        self,
        path: str,
        kind: type[_E],
        names: _Names,
        value: int,
        renames: Mapping[str, str] | None = None,
    ) -> _E:
        try:
            name = names.Name(value)
            return kind[(renames or {}).get(name, name)]
        except (ValueError, KeyError):
            raise self.fail(path, f"{value} is not a supported {kind.__name__}") from None

    def ip(self, path: str, raw: bytes) -> IPAddress:
        if len(raw) not in (4, 16):
            raise self.fail(path, f"an IP address is 4 or 16 bytes, not {len(raw)}")
        return ipaddress.ip_address(raw)

    def port(self, path: str, value: int, *, allow_zero: bool = False) -> int:
        if not (0 if allow_zero else 1) <= value <= 65535:
            raise self.fail(path, f"port {value} is outside {0 if allow_zero else 1}..65535")
        return value


# ---------------------------------------------------------------------- addresses


def address_from_proto(message: workload_pb2.Address) -> Workload | Service:
    """Convert one ``Address`` resource: a workload or a service."""
    kind = message.WhichOneof("type")
    if kind == "workload":
        return workload_from_proto(message.workload)
    if kind == "service":
        return service_from_proto(message.service)
    raise InvalidResource("Address", "type", "has neither a workload nor a service")


def workload_from_proto(message: workload_pb2.Workload) -> Workload:
    r = _Reader(f"Workload {message.uid or message.name or '<unnamed>'}")
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


def _gateway(r: _Reader, path: str, gateway: workload_pb2.GatewayAddress) -> GatewayAddress:
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


def _network_address(r: _Reader, path: str, message: workload_pb2.NetworkAddress) -> NetworkAddress:
    return NetworkAddress(network=message.network, address=r.ip(f"{path}.address", message.address))


def _application_tunnel(r: _Reader, message: workload_pb2.ApplicationTunnel) -> ApplicationTunnel:
    protocol = r.enum(
        "application_tunnel.protocol",
        ApplicationTunnelProtocol,
        workload_pb2.ApplicationTunnel.Protocol,
        message.protocol,
    )
    port = r.port("application_tunnel.port", message.port, allow_zero=True)
    return ApplicationTunnel(protocol=protocol, port=port or None)


def _ports(r: _Reader, path: str, ports: Iterable[workload_pb2.Port]) -> tuple[Port, ...]:
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
    r: _Reader, services: Mapping[str, workload_pb2.PortList]
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
    r = _Reader(
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


def _load_balancing(r: _Reader, message: workload_pb2.LoadBalancing) -> LoadBalancing:
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


# ---------------------------------------------------------------------- authorization


def authorization_from_proto(message: authorization_pb2.Authorization) -> Authorization:
    """Convert one ``Authorization`` resource; any malformed value rejects the whole policy."""
    r = _Reader(
        f"Authorization {message.namespace or '<no namespace>'}/{message.name or '<no name>'}"
    )
    return Authorization(
        name=r.required("name", message.name),
        namespace=r.required("namespace", message.namespace),
        scope=r.enum("scope", Scope, authorization_pb2.Scope, message.scope),
        action=r.enum("action", Action, authorization_pb2.Action, message.action),
        rules=tuple(
            Rule(
                clauses=tuple(
                    Clause(
                        matches=tuple(
                            _match(r, f"rules[{i}].clauses[{j}].matches[{k}]", match)
                            for k, match in enumerate(clause.matches)
                        )
                    )
                    for j, clause in enumerate(rule.clauses)
                )
            )
            for i, rule in enumerate(message.rules)
        ),
        dry_run=message.dry_run,
    )


def _match(r: _Reader, path: str, message: authorization_pb2.Match) -> Match:
    def strings(name: str) -> tuple[StringMatch, ...]:
        values = getattr(message, name)
        return tuple(_string_match(r, f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def networks(name: str) -> tuple[IPNetwork, ...]:
        values = getattr(message, name)
        return tuple(_network(r, f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def ports(name: str) -> frozenset[int]:
        values = getattr(message, name)
        return frozenset(r.port(f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def accounts(name: str) -> tuple[ServiceAccountMatch, ...]:
        values = getattr(message, name)
        return tuple(
            ServiceAccountMatch(
                namespace=r.required(f"{path}.{name}[{i}].namespace", v.namespace),
                service_account=r.required(f"{path}.{name}[{i}].serviceAccount", v.serviceAccount),
            )
            for i, v in enumerate(values)
        )

    return Match(
        namespaces=strings("namespaces"),
        not_namespaces=strings("not_namespaces"),
        principals=strings("principals"),
        not_principals=strings("not_principals"),
        source_ips=networks("source_ips"),
        not_source_ips=networks("not_source_ips"),
        destination_ips=networks("destination_ips"),
        not_destination_ips=networks("not_destination_ips"),
        destination_ports=ports("destination_ports"),
        not_destination_ports=ports("not_destination_ports"),
        service_accounts=accounts("service_accounts"),
        not_service_accounts=accounts("not_service_accounts"),
    )


def _string_match(r: _Reader, path: str, message: authorization_pb2.StringMatch) -> StringMatch:
    kind = message.WhichOneof("match_type")
    if kind == "exact":
        return StringMatch.exact(message.exact)
    if kind == "prefix":
        return StringMatch.prefix(message.prefix)
    if kind == "suffix":
        return StringMatch.suffix(message.suffix)
    if kind == "presence":
        return StringMatch.presence()
    raise r.fail(path, "sets none of exact, prefix, suffix, presence")


def _network(r: _Reader, path: str, message: authorization_pb2.Address) -> IPNetwork:
    ip = r.ip(f"{path}.address", message.address)
    if message.length > ip.max_prefixlen:
        raise r.fail(f"{path}.length", f"{message.length} exceeds {ip.max_prefixlen} for {ip}")
    # Host bits are allowed and ignored, as a CIDR in a policy is read by its prefix.
    return ipaddress.ip_network(f"{ip}/{message.length}", strict=False)


def fail_closed_authorization(
    resource_name: str, message: authorization_pb2.Authorization, error: InvalidResource
) -> Authorization:
    """A stand-in for a policy that could not be parsed: a DENY that matches everything, for
    the workloads the policy would have covered (its scope, or its whole namespace when even
    the scope is unreadable). ``resource_name`` is the xDS name, ``<namespace>/<name>``."""
    namespace, sep, name = resource_name.partition("/")
    if not sep:
        namespace, name = message.namespace, resource_name
    names = authorization_pb2.Scope
    try:
        scope = Scope[names.Name(message.scope)]
    except (ValueError, KeyError):
        scope = Scope.NAMESPACE
    return Authorization(
        name=name or message.name,
        namespace=namespace,
        scope=scope,
        action=Action.DENY,
        rules=(Rule(),),  # a rule without clauses matches every connection
        dry_run=message.dry_run,
        conversion_error=error.message,
    )


# ---------------------------------------------------------------------- batches


@dataclass(frozen=True, slots=True, kw_only=True)
class Converted:
    """A delta response turned into one ``StateUpdate``, and what to NACK with."""

    update: StateUpdate
    errors: tuple[InvalidResource, ...] = ()


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


def authorization_update(
    resources: Iterable[tuple[str, authorization_pb2.Authorization]], removed: Iterable[str] = ()
) -> Converted:
    """Convert the ``Authorization`` resources of one delta response, keyed by resource name.

    A policy that fails is replaced by its fail-closed stand-in (never silently skipped: a
    skipped DENY would allow what it was meant to deny) and reported in ``errors``.
    """
    policies: list[Authorization] = []
    errors: list[InvalidResource] = []
    for name, message in resources:
        try:
            converted = authorization_from_proto(message)
            if converted.key != name:
                raise InvalidResource(name, "", f"resource name should be {converted.key!r}")
        except InvalidResource as error:
            errors.append(error)
            converted = fail_closed_authorization(name, message, error)
        policies.append(converted)
    update = StateUpdate(policies=tuple(policies), removed_policies=tuple(removed))
    return Converted(update=update, errors=tuple(errors))
