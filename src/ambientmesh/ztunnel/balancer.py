"""Choosing an endpoint behind a service: health, locality, weighted random (reference 2.4)."""

from __future__ import annotations

import bisect
import enum
import itertools
import random
from dataclasses import dataclass

from ambientmesh.ztunnel.model import (
    HealthPolicy,
    HealthStatus,
    IPAddress,
    IpFamilies,
    LoadBalancing,
    LoadBalancingMode,
    LocalityScope,
    Service,
    SocketAddr,
    Workload,
)
from ambientmesh.ztunnel.state import State


class ResolutionMode(enum.Enum):
    """STANDARD resolves a service a client addressed; WAYPOINT resolves a waypoint's service,
    which clients never address by port, so the port need not be declared on it."""

    STANDARD = "STANDARD"
    WAYPOINT = "WAYPOINT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """A chosen workload and the port to reach it on."""

    workload: Workload
    port: int


def pick_endpoint(
    state: State,
    source: Workload,
    service: Service,
    service_port: int,
    *,
    mode: ResolutionMode,
    rng: random.Random,
) -> Endpoint | None:
    """Pick an endpoint of ``service`` for ``service_port``; None when there is none to pick.

    The candidate set depends only on the state, the service port and the few source facts in
    the memo key, so it is computed once per state version; each pick is then O(log n).
    """
    declared = service.port(service_port)
    if mode is ResolutionMode.STANDARD and declared is None:
        return None  # the service does not have this port at all
    lb = service.load_balancing
    ranked = lb is not None and lb.mode in (LoadBalancingMode.STRICT, LoadBalancingMode.FAILOVER)
    where = (source.locality, source.node, source.cluster_id) if ranked else None
    pool = state.memoized(
        ("endpoints", service.key, service_port, mode, source.network, where),
        lambda: _pool(state, source, service, service_port, mode),
    )
    return pool.pick(rng)


@dataclass(frozen=True, slots=True)
class _Pool:
    endpoints: tuple[Endpoint, ...]
    # Running totals of capacity: a point in [0, total) falls on exactly one endpoint.
    cumulative: tuple[int, ...]

    def pick(self, rng: random.Random) -> Endpoint | None:
        """Weighted random on ``capacity`` (ztunnel picks at random; its docs say round-robin)."""
        total = self.cumulative[-1] if self.cumulative else 0
        if total <= 0:
            return None
        return self.endpoints[bisect.bisect_right(self.cumulative, rng.randrange(total))]


def _pool(
    state: State, source: Workload, service: Service, service_port: int, mode: ResolutionMode
) -> _Pool:
    declared = service.port(service_port)
    service_target = declared.target_port if declared is not None else 0
    candidates = [
        workload
        for workload in state.endpoints(service.key)
        if _usable(workload, source, service, service_port, target=service_target, mode=mode)
    ]
    if service.load_balancing is not None:
        candidates = _by_locality(candidates, source, service.load_balancing)
    endpoints: list[Endpoint] = []
    for workload in candidates:
        port = _target_port(workload, service, service_port, service_target)
        # ztunnel picks first and then fails if the port cannot be mapped; leaving such an
        # endpoint out instead only avoids failing a connection that another endpoint can take.
        if port is not None and workload.capacity > 0:
            endpoints.append(Endpoint(workload=workload, port=port))
    return _Pool(
        endpoints=tuple(endpoints),
        cumulative=tuple(itertools.accumulate(e.workload.capacity for e in endpoints)),
    )


def _usable(
    workload: Workload,
    source: Workload,
    service: Service,
    service_port: int,
    *,
    target: int,
    mode: ResolutionMode,
) -> bool:
    # No address: reachable only through its network's gateway, never from its own network.
    if not (workload.addresses or workload.hostname) and (
        workload.network == source.network or workload.network_gateway is None
    ):
        return False
    lb = service.load_balancing
    allow_unhealthy = lb is not None and lb.health_policy is HealthPolicy.ALLOW_ALL
    if workload.status is not HealthStatus.HEALTHY and not allow_unhealthy:
        return False
    if mode is ResolutionMode.STANDARD:
        # A named target port must be resolvable for this very endpoint.
        return target > 0 or workload.endpoint_target_port(service.key, service_port) is not None
    return service.port(service_port) is not None or workload.application_tunnel is not None


def _by_locality(candidates: list[Workload], source: Workload, lb: LoadBalancing) -> list[Workload]:
    """Keep the best-ranked endpoints; rank = how many leading preferences match the source.

    STRICT drops endpoints that do not match every preference; FAILOVER keeps the best rank
    present. Without a mode (STANDARD) preferences are ignored, as in ztunnel.
    """
    if lb.mode not in (LoadBalancingMode.STRICT, LoadBalancingMode.FAILOVER):
        return candidates
    ranked: list[tuple[int, Workload]] = []
    for workload in candidates:
        rank = 0
        for scope in lb.routing_preference:
            if not _same(scope, source, workload):
                break
            rank += 1
        if lb.mode is LoadBalancingMode.STRICT and rank != len(lb.routing_preference):
            continue
        ranked.append((rank, workload))
    if not ranked:
        return []
    best = max(rank for rank, _ in ranked)
    return [workload for rank, workload in ranked if rank == best]


def _same(scope: LocalityScope, a: Workload, b: Workload) -> bool:
    if scope is LocalityScope.REGION:
        return a.locality.region == b.locality.region
    if scope is LocalityScope.ZONE:
        return a.locality.zone == b.locality.zone
    if scope is LocalityScope.SUBZONE:
        return a.locality.subzone == b.locality.subzone
    if scope is LocalityScope.NODE:
        return a.node == b.node
    if scope is LocalityScope.CLUSTER:
        return a.cluster_id == b.cluster_id
    return a.network == b.network


def _target_port(
    workload: Workload, service: Service, service_port: int, service_target: int
) -> int | None:
    """The endpoint's own mapping first (named ports), then the service's, then an app tunnel."""
    mapped = workload.endpoint_target_port(service.key, service_port)
    if mapped is not None:
        return mapped
    if service_target > 0:
        return service_target
    if workload.application_tunnel is not None and workload.application_tunnel.port is not None:
        # The workload terminates the tunnel itself; it does not need the port on the service.
        return service_port
    return None


def select_ip(
    workload: Workload, original: SocketAddr, families: IpFamilies = IpFamilies.AUTOMATIC
) -> IPAddress | None:
    """Which of the workload's IPs to dial: the one the client asked for if it owns it, else one
    the service's IP families accept, preferring the client's address family."""
    if original.ip in workload.addresses:
        return original.ip
    accepted = [ip for ip in workload.addresses if families.accepts(ip)]
    for ip in accepted:
        if ip.version == original.ip.version:
            return ip
    return accepted[0] if accepted else None
