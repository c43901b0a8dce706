"""Which waypoint an object uses, if any (istio-ambient.md §3.4, §2.8).

Resolution for a Service, ServiceEntry or Pod:

1. the object's own ``istio.io/use-waypoint`` label (``none`` opts out and stops);
2. for pods only, the older model: a waypoint Gateway annotated
   ``istio.io/for-service-account: <sa>`` in the pod's namespace serves that account's pods
   and wins over the namespace-wide choice;
3. the namespace's ``istio.io/use-waypoint`` label;
4. otherwise no waypoint.

``istio.io/use-waypoint-namespace`` names the waypoint's namespace (default: the object's).
The waypoint must exist, be of class ``istio-waypoint``, serve this kind of traffic
(``istio.io/waypoint-for``: service by default, workload, all or none), admit the caller's
namespace on its HBONE listener, and be ready (``status.addresses`` set). Otherwise the
object gets no waypoint: fail open, with the reason kept for status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import GatewayFacts, Key, Labels, selector_matches
from ambientmesh.proto import workload_pb2 as wpb

SERVICE = "service"
WORKLOAD = "workload"


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """The outcome of resolving one object's waypoint."""

    requested: Key | None  # the waypoint asked for (or consulted), if any
    waypoint: GatewayFacts | None  # set only when bound
    reason: str  # Bound, NotRequested, OptedOut, NotFound, NotReady, WrongTrafficType, ...
    message: str = ""

    @property
    def bound(self) -> bool:
        return self.waypoint is not None


NOT_REQUESTED = Binding(requested=None, waypoint=None, reason="NotRequested")


def traffic_type(gateway: GatewayFacts) -> str:
    return gateway.meta.labels.get(L.WAYPOINT_FOR, SERVICE)


def is_waypoint(gateway: GatewayFacts) -> bool:
    return gateway.class_name == L.WAYPOINT_CLASS


def is_managed_waypoint_object(labels: Labels) -> bool:
    """Waypoint pods and Services never get a waypoint themselves."""
    return L.GATEWAY_NAME_LABEL in labels and L.GATEWAY_MANAGED_LABEL in labels


def requested(labels: Labels, namespace: str, namespace_labels: Labels) -> tuple[Key | None, str]:
    """The waypoint the object or its namespace names, and where it was named."""
    for source, where in ((labels, "object"), (namespace_labels, "namespace")):
        name = source.get(L.USE_WAYPOINT)
        if name:
            if name == L.WAYPOINT_NONE:
                return None, where
            return (source.get(L.USE_WAYPOINT_NAMESPACE) or namespace, name), where
    return None, ""


def resolve(
    *,
    labels: Labels,
    namespace: str,
    namespace_labels: Labels,
    kind: str,
    gateways: Mapping[Key, GatewayFacts],
    caller_namespace_labels: Labels,
    service_account_waypoint: GatewayFacts | None = None,
) -> Binding:
    if is_managed_waypoint_object(labels):
        return NOT_REQUESTED
    key, where = requested(labels, namespace, namespace_labels)
    if where == "object" and key is None:
        return Binding(requested=None, waypoint=None, reason="OptedOut")
    if where != "object" and service_account_waypoint is not None:
        sa_binding = _check(
            service_account_waypoint,
            kind=None,
            caller_ns=namespace,
            caller_labels=caller_namespace_labels,
        )
        if sa_binding.bound:
            return sa_binding
    if key is None:
        return Binding(requested=None, waypoint=None, reason="OptedOut") if where else NOT_REQUESTED
    gateway = gateways.get(key)
    if gateway is None or not is_waypoint(gateway):
        return Binding(
            requested=key,
            waypoint=None,
            reason="WaypointNotFound",
            message=f"waypoint {key[0]}/{key[1]} does not exist",
        )
    binding = _check(gateway, kind=kind, caller_ns=namespace, caller_labels=caller_namespace_labels)
    if binding.reason == "WrongTrafficType" and where == "namespace":
        # A namespace-wide choice that does not serve this kind is silently ignored.
        return Binding(requested=key, waypoint=None, reason="NotRequested")
    return binding


def _check(
    gateway: GatewayFacts, *, kind: str | None, caller_ns: str, caller_labels: Labels
) -> Binding:
    key = gateway.key
    served = traffic_type(gateway)
    if served == "none" or (kind is not None and served not in (kind, "all")):
        return Binding(
            requested=key,
            waypoint=None,
            reason="WrongTrafficType",
            message=f"waypoint {key[0]}/{key[1]} serves {served} traffic, not {kind} traffic",
        )
    if gateway.meta.namespace != caller_ns and not _admits(gateway, caller_ns, caller_labels):
        return Binding(
            requested=key,
            waypoint=None,
            reason="AttachmentDenied",
            message=f"waypoint {key[0]}/{key[1]} does not allow namespace {caller_ns}",
        )
    if not gateway.addresses:
        return Binding(
            requested=key,
            waypoint=None,
            reason="WaypointNotReady",
            message=f"waypoint {key[0]}/{key[1]} has no address yet; traffic goes direct",
        )
    return Binding(
        requested=key,
        waypoint=gateway,
        reason="WaypointAccepted",
        message=f"bound to {key[0]}/{key[1]}",
    )


def _admits(gateway: GatewayFacts, caller_ns: str, caller_labels: Labels) -> bool:
    """Cross-namespace use needs the HBONE listener's allowedRoutes to admit the caller."""
    for listener in gateway.listeners:
        if listener.protocol != "HBONE":
            continue
        if listener.routes_from == "All":
            return True
        if listener.routes_from == "Selector" and selector_matches(
            listener.routes_selector, caller_labels
        ):
            return True
    return False


def gateway_address(gateway: GatewayFacts, config: MeshConfig) -> wpb.GatewayAddress:
    """Istio prefers the waypoint Service's hostname to an IP."""
    address = wpb.GatewayAddress(hbone_mtls_port=config.hbone_port)
    for kind, value in gateway.addresses:
        if kind == "Hostname":
            address.hostname.CopyFrom(
                wpb.NamespacedHostname(namespace=gateway.meta.namespace, hostname=value)
            )
            return address
    for _, value in gateway.addresses:
        try:
            packed = ipaddress.ip_address(value).packed
        except ValueError:
            continue
        address.address.CopyFrom(wpb.NetworkAddress(address=packed))
        return address
    address.hostname.CopyFrom(
        wpb.NamespacedHostname(
            namespace=gateway.meta.namespace,
            hostname=config.service_hostname(gateway.meta.namespace, gateway.meta.name),
        )
    )
    return address
