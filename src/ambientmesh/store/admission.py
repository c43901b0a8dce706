"""Admission: pure functions that default or reject an object inside the write that stores it.

Each function takes an ``AdmissionRequest`` and returns the object to store (a new dict when it
changes something; the argument is never mutated), or raises ``InvalidInput`` /
``ValidationFailed`` to reject the write. The store runs them in order after its own
normalisation (apiVersion, namespace defaulting, server metadata); the composition root may
append more (``Store(admission=DEFAULT_ADMISSION + (mine,))``).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ambientmesh.errors import ValidationFailed
from ambientmesh.resources.kinds import KindInfo

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AdmissionContext(Protocol):
    """Facts about the store an admission function may ask for, read inside the transaction."""

    @property
    def service_cidr(self) -> IPNetwork: ...

    @property
    def dns_service_ip(self) -> str: ...

    @property
    def random(self) -> random.Random: ...

    def cluster_ip_in_use(self, ip: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AdmissionRequest:
    operation: Literal["CREATE", "UPDATE"]
    kind: KindInfo
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None
    context: AdmissionContext


Admission = Callable[[AdmissionRequest], Mapping[str, Any]]


def _with(obj: Mapping[str, Any], section: str, **values: Any) -> dict[str, Any]:
    """A copy of ``obj`` whose ``section`` dict has ``values`` set (shallow copies on the path)."""
    updated = dict(obj)
    updated[section] = {**(obj.get(section) or {}), **values}
    return updated


def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, Mapping) else {}


def pod_defaults(request: AdmissionRequest) -> Mapping[str, Any]:
    """Pods run as ServiceAccount ``default`` unless told otherwise and start ``Pending``; a
    bound pod stays bound when a later write leaves ``spec.nodeName`` out (as Kubernetes keeps
    the scheduler's binding)."""
    if (request.kind.group, request.kind.kind) != ("", "Pod"):
        return request.obj
    obj = request.obj
    spec = _section(obj, "spec")
    if not spec.get("serviceAccountName"):
        obj = _with(obj, "spec", serviceAccountName="default")
    old_node = _section(request.old or {}, "spec").get("nodeName")
    if old_node and not spec.get("nodeName"):
        obj = _with(obj, "spec", nodeName=old_node)
    if not _section(obj, "status").get("phase"):
        obj = _with(obj, "status", phase="Pending")
    return obj


def service_cluster_ip(request: AdmissionRequest) -> Mapping[str, Any]:
    """Give a Service a cluster IP from the service CIDR, or check the one it asks for.

    ``None`` keeps a Service headless; ExternalName Services get no IP. The cluster DNS
    address is handed out only on explicit request. The IP is immutable: an update that
    leaves it out keeps the old one, an update that changes it is rejected.
    """
    if (request.kind.group, request.kind.kind) != ("", "Service"):
        return request.obj
    spec = _section(request.obj, "spec")
    if spec.get("type") == "ExternalName":
        return request.obj
    requested = _requested_ip(spec)
    if request.operation == "UPDATE":
        old_ip = _requested_ip(_section(request.old or {}, "spec"))
        if old_ip and not requested:
            return _with(request.obj, "spec", clusterIP=old_ip, clusterIPs=[old_ip])
        if old_ip and requested != old_ip:
            raise ValidationFailed(
                [f'spec.clusterIP: invalid value "{requested}": field is immutable (is {old_ip})']
            )
        if old_ip:
            return _with(request.obj, "spec", clusterIP=old_ip, clusterIPs=[old_ip])
    if requested == "None":
        return _with(request.obj, "spec", clusterIP="None", clusterIPs=["None"])
    ip = _check_requested(requested, request.context) if requested else _allocate(request.context)
    return _with(request.obj, "spec", clusterIP=ip, clusterIPs=[ip])


def cluster_ips_of(kind: KindInfo, obj: Mapping[str, Any]) -> list[str]:
    """The cluster IPs ``obj`` holds (and must release when it goes)."""
    if (kind.group, kind.kind) != ("", "Service"):
        return []
    ips = _section(obj, "spec").get("clusterIPs") or []
    return [ip for ip in ips if isinstance(ip, str) and ip not in ("", "None")]


def _requested_ip(spec: Mapping[str, Any]) -> str:
    ip = spec.get("clusterIP")
    if isinstance(ip, str) and ip:
        return ip
    ips = spec.get("clusterIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], str):
        return ips[0]
    return ""


def _usable(network: IPNetwork, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # The network address and (for IPv4) the broadcast address are never handed out.
    return address in network and address not in (
        network.network_address,
        network.broadcast_address,
    )


def _check_requested(requested: str, context: AdmissionContext) -> str:
    try:
        address = ipaddress.ip_address(requested)
    except ValueError:
        raise ValidationFailed(
            [f'spec.clusterIP: invalid value "{requested}": must be a valid IP address or "None"']
        ) from None
    if not _usable(context.service_cidr, address):
        raise ValidationFailed(
            [
                f'spec.clusterIP: invalid value "{requested}": provided IP is not in the valid '
                f"range; the range of valid IPs is {context.service_cidr}"
            ]
        )
    if context.cluster_ip_in_use(str(address)):
        raise ValidationFailed(
            [f'spec.clusterIP: invalid value "{requested}": provided IP is already allocated']
        )
    return str(address)


def _allocate(context: AdmissionContext) -> str:
    network = context.service_cidr
    size = network.num_addresses
    # Random probes first (cheap while the range is sparse), then a full scan so a nearly
    # full range still finds its last free address.
    for _ in range(64):
        candidate = str(network[context.random.randrange(size)])
        if _free(candidate, context):
            return candidate
    for offset in range(min(size, 1 << 20)):
        candidate = str(network[offset])
        if _free(candidate, context):
            return candidate
    raise ValidationFailed([f"spec.clusterIP: the service CIDR {network} has no free address left"])


def _free(candidate: str, context: AdmissionContext) -> bool:
    address = ipaddress.ip_address(candidate)
    return (
        _usable(context.service_cidr, address)
        and candidate != context.dns_service_ip
        and not context.cluster_ip_in_use(candidate)
    )


DEFAULT_ADMISSION: tuple[Admission, ...] = (pod_defaults, service_cluster_ip)
