"""The few facts the ambient computation reads from each object, as frozen values.

Objects arrive as stored JSON (already validated at admission). Readers are still defensive:
a field of the wrong shape reads as absent, so one odd object never stops the computation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]
"""(namespace, name); the namespace is "" for cluster-scoped kinds."""

Labels = Mapping[str, str]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _strings(value: Any) -> dict[str, str]:
    return {k: v for k, v in _map(value).items() if isinstance(k, str) and isinstance(v, str)}


def _ip(text: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(text)) if isinstance(text, str) else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    namespace: str
    name: str
    labels: Labels = field(default_factory=dict)
    annotations: Labels = field(default_factory=dict)
    created: str = ""  # RFC 3339; orders policies by age (oldest wins)
    generation: int = 0

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)


def read_meta(obj: Mapping[str, Any]) -> Meta:
    metadata = _map(obj.get("metadata"))
    return Meta(
        namespace=_str(metadata.get("namespace")),
        name=_str(metadata.get("name")),
        labels=_strings(metadata.get("labels")),
        annotations=_strings(metadata.get("annotations")),
        created=_str(metadata.get("creationTimestamp")),
        generation=_int(metadata.get("generation")) or 0,
    )


# ----------------------------------------------------------------------------- core kinds


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceFacts:
    meta: Meta


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    meta: Meta

    @property
    def labels(self) -> Labels:
        return self.meta.labels


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFacts:
    meta: Meta
    node: str
    service_account: str
    ips: tuple[str, ...]
    phase: str
    ready: bool
    terminating: bool
    host_network: bool
    owners: tuple[tuple[str, str], ...]  # (kind, name) of each ownerReference
    container_ports: Mapping[str, int]  # named container port -> number

    @property
    def key(self) -> Key:
        return self.meta.key

    @property
    def labels(self) -> Labels:
        return self.meta.labels


def read_pod(obj: Mapping[str, Any]) -> PodFacts:
    meta = read_meta(obj)
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    ips = [_ip(_map(entry).get("ip")) for entry in _list(status.get("podIPs"))]
    if not any(ips):
        ips = [_ip(status.get("podIP"))]
    ports: dict[str, int] = {}
    for container in _list(spec.get("containers")):
        for port in _list(_map(container).get("ports")):
            name, number = _str(_map(port).get("name")), _int(_map(port).get("containerPort"))
            if name and number is not None:
                ports.setdefault(name, number)
    ready = any(
        _map(condition).get("type") == "Ready" and _map(condition).get("status") == "True"
        for condition in _list(status.get("conditions"))
    )
    owners = tuple(
        (_str(_map(ref).get("kind")), _str(_map(ref).get("name")))
        for ref in _list(_map(obj.get("metadata")).get("ownerReferences"))
    )
    return PodFacts(
        meta=meta,
        node=_str(spec.get("nodeName")),
        service_account=_str(spec.get("serviceAccountName")) or "default",
        ips=tuple(ip for ip in ips if ip),
        phase=_str(status.get("phase"), "Pending"),
        ready=ready,
        terminating=bool(_map(obj.get("metadata")).get("deletionTimestamp")),
        host_network=spec.get("hostNetwork") is True,
        owners=owners,
        container_ports=ports,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePort:
    name: str
    port: int
    target_port: int | str | None
    app_protocol: str
    protocol: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFacts:
    meta: Meta
    selector: Labels | None  # None: no selector (endpoints managed elsewhere)
    vips: tuple[str, ...]
    external_name: bool
    ports: tuple[ServicePort, ...]
    internal_traffic_policy: str
    traffic_distribution: str
    publish_not_ready: bool

    @property
    def key(self) -> Key:
        return self.meta.key


def read_service(obj: Mapping[str, Any]) -> ServiceFacts:
    spec = _map(obj.get("spec"))
    vips = [_ip(ip) for ip in _list(spec.get("clusterIPs"))] or [_ip(spec.get("clusterIP"))]
    ports = []
    for port in _list(spec.get("ports")):
        entry = _map(port)
        number = _int(entry.get("port"))
        if number is None:
            continue
        target = entry.get("targetPort")
        ports.append(
            ServicePort(
                name=_str(entry.get("name")),
                port=number,
                target_port=target if isinstance(target, int | str) else None,
                app_protocol=_str(entry.get("appProtocol")),
                protocol=_str(entry.get("protocol"), "TCP"),
            )
        )
    selector = spec.get("selector")
    return ServiceFacts(
        meta=read_meta(obj),
        selector=_strings(selector) if isinstance(selector, Mapping) and selector else None,
        vips=tuple(ip for ip in vips if ip),
        external_name=spec.get("type") == "ExternalName",
        ports=tuple(ports),
        internal_traffic_policy=_str(spec.get("internalTrafficPolicy"), "Cluster"),
        traffic_distribution=_str(spec.get("trafficDistribution")),
        publish_not_ready=spec.get("publishNotReadyAddresses") is True,
    )


# ----------------------------------------------------------------------------- gateways


@dataclass(frozen=True, slots=True, kw_only=True)
class Listener:
    name: str
    port: int
    protocol: str
    routes_from: str  # Same (default), All or Selector
    routes_selector: Labels | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayFacts:
    meta: Meta
    class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[tuple[str, str], ...]  # status.addresses: (type, value)

    @property
    def key(self) -> Key:
        return self.meta.key


def read_gateway(obj: Mapping[str, Any]) -> GatewayFacts:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    listeners = []
    for listener in _list(spec.get("listeners")):
        entry = _map(listener)
        namespaces = _map(_map(entry.get("allowedRoutes")).get("namespaces"))
        selector = _map(namespaces.get("selector"))
        listeners.append(
            Listener(
                name=_str(entry.get("name")),
                port=_int(entry.get("port")) or 0,
                protocol=_str(entry.get("protocol")),
                routes_from=_str(namespaces.get("from"), "Same"),
                routes_selector=_strings(selector.get("matchLabels")) if selector else None,
            )
        )
    addresses = tuple(
        (_str(_map(a).get("type"), "IPAddress"), _str(_map(a).get("value")))
        for a in _list(status.get("addresses"))
        if _str(_map(a).get("value"))
    )
    return GatewayFacts(
        meta=read_meta(obj),
        class_name=_str(spec.get("gatewayClassName")),
        listeners=tuple(listeners),
        addresses=addresses,
    )


# ----------------------------------------------------------------------------- Istio policy


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyFacts:
    """An AuthorizationPolicy: metadata, the scope facts, and its raw spec for conversion."""

    meta: Meta
    selector: Labels | None
    targeted: bool  # targetRef(s): enforced by waypoints, never by ztunnel
    spec: Mapping[str, Any]

    @property
    def key(self) -> Key:
        return self.meta.key


def read_authorization_policy(obj: Mapping[str, Any]) -> PolicyFacts:
    spec = _map(obj.get("spec"))
    selector = spec.get("selector")
    return PolicyFacts(
        meta=read_meta(obj),
        selector=_strings(_map(selector).get("matchLabels")) if selector is not None else None,
        targeted=bool(spec.get("targetRef")) or bool(spec.get("targetRefs")),
        spec=spec,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAuthFacts:
    meta: Meta
    selector: Labels | None
    mode: str  # UNSET, DISABLE, PERMISSIVE or STRICT
    port_modes: Mapping[int, str]

    @property
    def key(self) -> Key:
        return self.meta.key


def read_peer_authentication(obj: Mapping[str, Any]) -> PeerAuthFacts:
    spec = _map(obj.get("spec"))
    selector = spec.get("selector")
    ports: dict[int, str] = {}
    for port, setting in _map(spec.get("portLevelMtls")).items():
        number = int(port) if str(port).isdigit() else None
        if number is not None:
            ports[number] = _str(_map(setting).get("mode"), "UNSET") or "UNSET"
    return PeerAuthFacts(
        meta=read_meta(obj),
        selector=_strings(_map(selector).get("matchLabels")) if selector is not None else None,
        mode=_str(_map(spec.get("mtls")).get("mode"), "UNSET") or "UNSET",
        port_modes=ports,
    )


# ----------------------------------------------------------------------------- ServiceEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryPort:
    name: str
    number: int
    target_port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryEndpoint:
    address: str
    ports: Mapping[str, int]  # service port name -> endpoint port
    labels: Labels
    service_account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceEntryFacts:
    meta: Meta
    hosts: tuple[str, ...]
    vips: tuple[str, ...]
    ports: tuple[EntryPort, ...]
    selector: Labels | None
    endpoints: tuple[EntryEndpoint, ...]

    @property
    def key(self) -> Key:
        return self.meta.key


def read_service_entry(obj: Mapping[str, Any]) -> ServiceEntryFacts:
    spec = _map(obj.get("spec"))
    ports = []
    for port in _list(spec.get("ports")):
        entry = _map(port)
        number = _int(entry.get("number"))
        if number is not None:
            target = _int(entry.get("targetPort")) or number
            ports.append(EntryPort(name=_str(entry.get("name")), number=number, target_port=target))
    endpoints = []
    for endpoint in _list(spec.get("endpoints")):
        entry = _map(endpoint)
        address = _ip(entry.get("address"))
        if address is not None:
            endpoints.append(
                EntryEndpoint(
                    address=address,
                    ports={k: v for k, v in _map(entry.get("ports")).items() if _int(v)},
                    labels=_strings(entry.get("labels")),
                    service_account=_str(entry.get("serviceAccount")),
                )
            )
    selector = spec.get("workloadSelector")
    vips = [_ip(address) for address in _list(spec.get("addresses"))]
    return ServiceEntryFacts(
        meta=read_meta(obj),
        hosts=tuple(h for h in (_str(x) for x in _list(spec.get("hosts"))) if h),
        vips=tuple(ip for ip in vips if ip),
        ports=tuple(ports),
        selector=_strings(_map(selector).get("labels")) if selector is not None else None,
        endpoints=tuple(endpoints),
    )


def selector_matches(selector: Labels | None, labels: Labels) -> bool:
    """Equality selector semantics: every pair must be present. None selects nothing."""
    if selector is None:
        return False
    return all(labels.get(key) == value for key, value in selector.items())
