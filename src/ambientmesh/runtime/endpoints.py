"""Services and pods in, what kube-proxy and the cluster DNS serve out; pure.

A pod is a ready endpoint of a Service when it is in the Service's namespace, matches its
selector, is Running with condition Ready=True, has an address and is not being deleted
(Kubernetes' EndpointSlice controller; `publishNotReadyAddresses` lifts the readiness rule).
A named `targetPort` is looked up in each pod's container ports, so pods may differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Any

from ambientmesh.runtime.dnszone import service_fqdn
from ambientmesh.runtime.kubeproxy import Endpoint, ServicePort


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pod:
    ip: IPv4Address
    labels: Mapping[str, str]
    ready: bool
    ports: Mapping[tuple[str, str], int]  # (port name, protocol) -> container port


def service_ports(
    services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[ServicePort]:
    """Every TCP/UDP port of every Service with a cluster IP, with its ready endpoints."""
    by_namespace = _pods_by_namespace(pods)
    result = []
    for service in services:
        vip = _cluster_ip(service)
        if vip is None:
            continue
        namespace, name = _key(service)
        members = _members(service, by_namespace.get(namespace, []))
        for port in _ports(service):
            protocol = str(port.get("protocol") or "TCP")
            if protocol not in ("TCP", "UDP"):
                continue  # SCTP: nothing in the local runtime speaks it
            label = port.get("name") or str(port["port"])
            result.append(
                ServicePort(
                    name=f"{namespace}/{name}:{label}",
                    vip=vip,
                    port=int(port["port"]),
                    protocol="TCP" if protocol == "TCP" else "UDP",
                    endpoints=_endpoints(port, protocol, members),
                )
            )
    return result


def dns_records(
    services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], *, domain: str
) -> dict[str, list[IPv4Address]]:
    """A records: a Service's FQDN names its cluster IP, or a headless one its ready pods."""
    by_namespace = _pods_by_namespace(pods)
    records: dict[str, list[IPv4Address]] = {}
    for service in services:
        spec = _map(service.get("spec"))
        if spec.get("type") == "ExternalName":
            continue
        namespace, name = _key(service)
        fqdn = service_fqdn(name, namespace, domain)
        vip = _cluster_ip(service)
        if vip is not None:
            records[fqdn] = [vip]
        elif spec.get("clusterIP") == "None":
            members = _members(service, by_namespace.get(namespace, []))
            records[fqdn] = sorted({pod.ip for pod in members})
    return records


def _endpoints(port: Mapping[str, Any], protocol: str, members: list[_Pod]) -> tuple[Endpoint, ...]:
    target = port.get("targetPort")
    if target in (None, "", 0):
        target = port["port"]
    found = set()
    for pod in members:
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            number: int | None = int(target)
        else:
            number = pod.ports.get((str(target), protocol))
        if number is not None:
            found.add(Endpoint(ip=pod.ip, port=number))
    return tuple(sorted(found, key=lambda e: (e.ip, e.port)))


def _members(service: Mapping[str, Any], pods: list[_Pod]) -> list[_Pod]:
    spec = _map(service.get("spec"))
    selector = spec.get("selector")
    if not isinstance(selector, Mapping) or not selector:
        return []  # no selector: endpoints are managed by hand, which the runtime cannot do
    publish_unready = bool(spec.get("publishNotReadyAddresses"))
    return [
        pod
        for pod in pods
        if (pod.ready or publish_unready)
        and all(pod.labels.get(str(k)) == str(v) for k, v in selector.items())
    ]


def _pods_by_namespace(pods: Iterable[Mapping[str, Any]]) -> dict[str, list[_Pod]]:
    result: dict[str, list[_Pod]] = {}
    for obj in pods:
        pod = _pod(obj)
        if pod is not None:
            result.setdefault(_key(obj)[0], []).append(pod)
    return result


def _pod(obj: Mapping[str, Any]) -> _Pod | None:
    metadata = _map(obj.get("metadata"))
    status = _map(obj.get("status"))
    if metadata.get("deletionTimestamp") or status.get("phase") != "Running":
        return None
    try:
        address = ip_address(str(status.get("podIP") or ""))
    except ValueError:
        return None
    if not isinstance(address, IPv4Address):
        return None
    ready = any(
        _map(c).get("type") == "Ready" and _map(c).get("status") == "True"
        for c in status.get("conditions") or []
    )
    ports = {}
    for container in _map(obj.get("spec")).get("containers") or []:
        for raw in _map(container).get("ports") or []:
            port = _map(raw)
            if port.get("name") and port.get("containerPort"):
                key = (str(port["name"]), str(port.get("protocol") or "TCP"))
                ports[key] = int(port["containerPort"])
    labels = {str(k): str(v) for k, v in _map(metadata.get("labels")).items()}
    return _Pod(ip=address, labels=labels, ready=ready, ports=ports)


def _cluster_ip(service: Mapping[str, Any]) -> IPv4Address | None:
    text = _map(service.get("spec")).get("clusterIP")
    if not isinstance(text, str) or text in ("", "None"):
        return None
    try:
        address = ip_address(text)
    except ValueError:
        return None
    return address if isinstance(address, IPv4Address) else None


def _ports(service: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    ports = _map(service.get("spec")).get("ports") or []
    return [p for p in ports if isinstance(p, Mapping) and isinstance(p.get("port"), int)]


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    metadata = _map(obj.get("metadata"))
    return str(metadata.get("namespace") or "default"), str(metadata.get("name") or "")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
