"""Terse constructors for workloads, services and policies used across the ztunnel tests."""

from __future__ import annotations

import random
from collections.abc import Mapping

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.model import (
    GatewayAddress,
    NamespacedHostname,
    NetworkAddress,
    Port,
    Service,
    SocketAddr,
    TunnelProtocol,
    Workload,
    parse_ip,
)
from ambientmesh.ztunnel.policy import (
    Action,
    Authorization,
    Clause,
    Match,
    Rule,
    Scope,
    StringMatch,
)
from ambientmesh.ztunnel.state import State, StateUpdate

DOMAIN = "svc.cluster.local"


def addr(text: str) -> SocketAddr:
    return SocketAddr.parse(text)


def host(name: str, ns: str = "default") -> str:
    return f"{name}.{ns}.{DOMAIN}"


def key(name: str, ns: str = "default") -> NamespacedHostname:
    return NamespacedHostname(namespace=ns, hostname=host(name, ns))


def identity(sa: str, ns: str = "default") -> Identity:
    return Identity(trust_domain="cluster.local", namespace=ns, service_account=sa)


def waypoint_ref(name: str, ns: str = "default") -> GatewayAddress:
    """A waypoint referenced by its service host name, as istiod prefers."""
    return GatewayAddress(destination=key(name, ns))


def waypoint_at(ip: str, network: str = "") -> GatewayAddress:
    """A waypoint referenced by address (a pod IP or a VIP)."""
    return GatewayAddress(destination=NetworkAddress(network=network, address=parse_ip(ip)))


def pod(
    name: str,
    *ips: str,
    ns: str = "default",
    sa: str | None = None,
    mesh: bool = True,
    backs: Mapping[NamespacedHostname, Mapping[int, int]] | None = None,
    **fields: object,
) -> Workload:
    """A pod; ``backs`` maps each service it backs to {service port: target port}."""
    services = {
        svc_key: tuple(Port(service_port=s, target_port=t) for s, t in ports.items())
        for svc_key, ports in (backs or {}).items()
    }
    defaults: dict[str, object] = {
        "workload_name": name,
        "canonical_name": name,
        "canonical_revision": "v1",
    }
    return Workload(
        uid=f"Kubernetes//Pod/{ns}/{name}",
        name=name,
        namespace=ns,
        addresses=tuple(parse_ip(ip) for ip in ips),
        tunnel_protocol=TunnelProtocol.HBONE if mesh else TunnelProtocol.NONE,
        service_account=sa or name,
        services=services,
        **(defaults | fields),
    )


def service(
    name: str,
    *vips: str,
    ns: str = "default",
    ports: Mapping[int, int] | None = None,
    network: str = "",
    **fields: object,
) -> Service:
    """A service with ``ports`` {service port: target port} (default 80 -> 8080)."""
    declared = ports if ports is not None else {80: 8080}
    return Service(
        name=name,
        namespace=ns,
        hostname=str(fields.pop("hostname", host(name, ns))),
        addresses=tuple(NetworkAddress(network=network, address=parse_ip(v)) for v in vips),
        ports=tuple(Port(service_port=s, target_port=t) for s, t in declared.items()),
        **fields,
    )


def policy(
    name: str,
    *rules: Rule,
    ns: str = "default",
    action: Action = Action.ALLOW,
    scope: Scope = Scope.NAMESPACE,
    dry_run: bool = False,
) -> Authorization:
    return Authorization(
        name=name, namespace=ns, scope=scope, action=action, rules=rules, dry_run=dry_run
    )


def rule(*matches: Match) -> Rule:
    """One rule with one clause per match (every match must hold)."""
    return Rule(clauses=tuple(Clause(matches=(m,)) for m in matches))


def from_principals(*patterns: str) -> Match:
    return Match(principals=tuple(StringMatch.from_pattern(p) for p in patterns))


def state_of(*items: Workload | Service | Authorization) -> State:
    state = State()
    state.apply(
        StateUpdate(
            workloads=tuple(i for i in items if isinstance(i, Workload)),
            services=tuple(i for i in items if isinstance(i, Service)),
            policies=tuple(i for i in items if isinstance(i, Authorization)),
        )
    )
    return state


def rng() -> random.Random:
    return random.Random(1337)
