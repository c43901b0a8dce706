"""Where a waypoint sends one CONNECT: a pure decision (reference 2.8, scenario 35).

A waypoint accepts only targets it serves: a service VIP whose service is bound to it (an
endpoint is picked as ztunnel picks one), or a pod IP whose workload is bound to it. Anything
else - another service's VIP, a pod it does not serve, its own address, a port the service
does not have, a host-name authority - is refused. The chosen endpoint is reached over HBONE
with the waypoint's own identity (so the destination sees the waypoint's service account), or
in plaintext when the endpoint is not in the mesh.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput
from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.balancer import Endpoint, ResolutionMode, pick_endpoint, select_ip
from ambientmesh.ztunnel.model import (
    HBONE_PORT,
    GatewayAddress,
    HostPort,
    IpFamilies,
    NetworkAddress,
    Service,
    SocketAddr,
    Workload,
    parse_authority,
)
from ambientmesh.ztunnel.state import State


class RouteKind(enum.Enum):
    HBONE = "hbone"  # the endpoint is in the mesh: a new tunnel to its :15008
    PLAINTEXT = "plaintext"  # an endpoint outside the mesh


@dataclass(frozen=True, slots=True, kw_only=True)
class WaypointRoute:
    """The next hop of one tunnel."""

    kind: RouteKind
    target: SocketAddr  # what the client asked for (VIP:port or pod:port)
    connect_to: SocketAddr  # endpoint:15008 for HBONE, endpoint:target-port otherwise
    authority: SocketAddr | None  # the inner CONNECT's :authority (HBONE only)
    expected_identities: tuple[Identity, ...]  # the endpoint must present one (HBONE only)
    destination: Workload
    service: Service | None  # the service addressed, when service-addressed


@dataclass(frozen=True, slots=True, kw_only=True)
class WaypointRefusal:
    """Answer the CONNECT with ``status``; ``reason`` is for the log."""

    status: int
    reason: str


def route(
    state: State, waypoint: Workload, authority: str, rng: random.Random
) -> WaypointRoute | WaypointRefusal:
    """Decide where the tunnel to ``authority`` goes, for the waypoint pod ``waypoint``."""
    try:
        target = parse_authority(authority)
    except InvalidInput as error:
        return WaypointRefusal(status=400, reason=f"bad :authority: {error.message}")
    if isinstance(target, HostPort):
        return WaypointRefusal(
            status=400, reason=f"{target} is a host name; only addresses are served"
        )
    address = NetworkAddress(network=waypoint.network, address=target.ip)
    service = state.service_at(address, prefer_namespace=waypoint.namespace)
    if service is not None:
        return _service_route(state, waypoint, service, target, rng)
    workload = state.workload_at(address)
    if workload is not None and _serves(state, workload.waypoint, waypoint):
        return _endpoint_route(
            waypoint, Endpoint(workload=workload, port=target.port), target, None
        )
    return WaypointRefusal(status=400, reason=f"{target} is not served by this waypoint")


def _service_route(
    state: State, waypoint: Workload, service: Service, target: SocketAddr, rng: random.Random
) -> WaypointRoute | WaypointRefusal:
    if not _serves(state, service.waypoint, waypoint):
        return WaypointRefusal(
            status=400, reason=f"service {service.key} is not served by this waypoint"
        )
    if service.port(target.port) is None:
        return WaypointRefusal(
            status=503, reason=f"service {service.key} has no port {target.port}"
        )
    endpoint = pick_endpoint(
        state, waypoint, service, target.port, mode=ResolutionMode.STANDARD, rng=rng
    )
    if endpoint is None:
        return WaypointRefusal(status=503, reason=f"service {service.key} has no healthy endpoint")
    return _endpoint_route(waypoint, endpoint, target, service)


def _endpoint_route(
    waypoint: Workload, endpoint: Endpoint, target: SocketAddr, service: Service | None
) -> WaypointRoute | WaypointRefusal:
    workload = endpoint.workload
    families = service.ip_families if service else IpFamilies.AUTOMATIC
    ip = select_ip(workload, target, families)
    if ip is None or workload.network != waypoint.network:
        return WaypointRefusal(
            status=503, reason=f"workload {workload.uid} has no reachable address"
        )
    app = SocketAddr(ip=ip, port=endpoint.port)
    if not workload.in_mesh:
        return WaypointRoute(
            kind=RouteKind.PLAINTEXT,
            target=target,
            connect_to=app,
            authority=None,
            expected_identities=(),
            destination=workload,
            service=service,
        )
    extra = service.subject_alt_names if service else ()
    return WaypointRoute(
        kind=RouteKind.HBONE,
        target=target,
        connect_to=SocketAddr(ip=ip, port=HBONE_PORT),
        authority=app,
        expected_identities=tuple(dict.fromkeys((workload.identity, *extra))),
        destination=workload,
        service=service,
    )


def _serves(state: State, reference: GatewayAddress | None, waypoint: Workload) -> bool:
    """Whether a waypoint reference (a service's or a workload's) resolves to this pod."""
    if reference is None:
        return False
    found = state.destination(reference.destination)
    if isinstance(found, Workload):
        return found.uid == waypoint.uid
    return found is not None and state.is_endpoint(found.key, waypoint)
