"""Where a captured outbound connection goes: ztunnel's outbound decision as a pure function.

Reference 2.3, step by step (see ``plan_outbound``). "Service-addressed" versus
"workload-addressed" is decided by the *original* destination IP: a service VIP uses the
service's waypoint and never the selected pod's; a pod IP uses the pod's waypoint and never its
services'. Policy is never evaluated here: it is enforced at the destination.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.baggage import TraceParent, connect_headers
from ambientmesh.ztunnel.balancer import Endpoint, ResolutionMode, pick_endpoint, select_ip
from ambientmesh.ztunnel.model import (
    HBONE_PORT,
    ZTUNNEL_PORTS,
    GatewayAddress,
    IPAddress,
    IpFamilies,
    NetworkAddress,
    Service,
    SocketAddr,
    Workload,
)
from ambientmesh.ztunnel.state import State
from ambientmesh.ztunnel.telemetry import ConnectionRecord, Reporter, SecurityPolicy

# ztunnel's optional SOCKS5 listener (127.0.0.1:15080) is also never a legal destination.
_SELF_PORTS = ZTUNNEL_PORTS | {15080}


class OutboundKind(enum.Enum):
    HBONE = "hbone"  # HBONE to the destination pod's :15008
    WAYPOINT = "waypoint"  # HBONE to a waypoint, authority = the original destination
    PLAINTEXT = "plaintext"  # a known workload that is not in the mesh
    PASSTHROUGH = "passthrough"  # unknown address, or a PASSTHROUGH service: as addressed


class OutboundFailure(enum.Enum):
    SELF_CALL = "SelfCall"
    NO_HEALTHY_UPSTREAM = "NoHealthyUpstream"
    UNKNOWN_WAYPOINT = "UnknownWaypoint"
    NO_VALID_DESTINATION = "NoValidDestination"
    CROSS_NETWORK = "CrossNetworkUnsupported"  # double HBONE through an E/W gateway


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPlan:
    """What to dial and, for HBONE, what to ask for and whom to trust."""

    kind: OutboundKind
    source: Workload
    original_dst: SocketAddr
    # The TCP next hop: pod:15008, waypoint:15008, or an address dialled in plaintext.
    connect_to: SocketAddr
    # The CONNECT :authority (HBONE kinds only).
    authority: SocketAddr | None = None
    # The peer must present one of these (HBONE kinds only; reference 1.2 step 3).
    expected_identities: tuple[Identity, ...] = ()
    # The next-hop workload: the waypoint when going through one; None for passthrough.
    destination_workload: Workload | None = None
    # The service the client addressed (or whose endpoint was picked), for `forwarded` and metrics.
    destination_service: Service | None = None

    @property
    def uses_hbone(self) -> bool:
        return self.kind in (OutboundKind.HBONE, OutboundKind.WAYPOINT)

    def record(self, client: SocketAddr) -> ConnectionRecord:
        """The telemetry record of this connection as the source ztunnel reports it."""
        mtls = self.uses_hbone
        return ConnectionRecord(
            reporter=Reporter.SOURCE,
            src_addr=client,
            dst_addr=self.connect_to,
            hbone_authority=str(self.authority) if self.authority else None,
            source_workload=self.source,
            source_identity=self.source.identity if mtls else None,
            destination_workload=self.destination_workload,
            destination_identity=self.expected_identities[0] if mtls else None,
            destination_service=self.destination_service,
            security_policy=SecurityPolicy.MUTUAL_TLS if mtls else SecurityPolicy.UNKNOWN,
        )

    def connect_headers(
        self, client: SocketAddr, trace: TraceParent
    ) -> tuple[tuple[str, str], ...]:
        """Headers for the CONNECT request (baggage, forwarded, traceparent)."""
        return connect_headers(self.source, client, self.destination_service, trace)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundRejection:
    """The connection must be refused (closed); ``reason`` is for the log."""

    failure: OutboundFailure
    reason: str


class _Refused(Exception):
    def __init__(self, failure: OutboundFailure, reason: str) -> None:
        super().__init__(reason)
        self.rejection = OutboundRejection(failure=failure, reason=reason)


def plan_outbound(
    state: State, source: Workload, original_dst: SocketAddr, rng: random.Random
) -> OutboundPlan | OutboundRejection:
    """Decide where ``source``'s connection to ``original_dst`` goes.

    0. ztunnel's own ports on loopback or on the pod's own IP: refused (self-call);
    1. a service VIP with a waypoint: HBONE to the waypoint, authority = the VIP:port;
    2. otherwise resolve an upstream: a VIP picks an endpoint (or passes through in PASSTHROUGH
       mode), a pod IP is that pod; nothing found is plaintext passthrough, except for a
       service, which fails for want of a healthy endpoint;
    3. a workload on another network would need double HBONE: refused (not supported);
    4. workload-addressed traffic to a pod with a waypoint goes to that waypoint, unless the
       source is that waypoint;
    5. an in-mesh pod gets HBONE to pod:15008 with authority pod:target-port; others plaintext.
    """
    try:
        return _plan(state, source, original_dst, rng)
    except _Refused as refused:
        return refused.rejection


def _plan(
    state: State, source: Workload, original_dst: SocketAddr, rng: random.Random
) -> OutboundPlan:
    ip = original_dst.ip
    if original_dst.port in _SELF_PORTS and (ip.is_loopback or ip in source.addresses):
        raise _Refused(
            OutboundFailure.SELF_CALL, f"{original_dst} is ztunnel's own port; refusing a loop"
        )
    target = NetworkAddress(network=source.network, address=ip)
    service = state.service_at(target, prefer_namespace=source.namespace)
    if service is not None and service.waypoint is not None:
        return _via_waypoint(state, source, original_dst, service.waypoint, service, rng=rng)

    upstream = _upstream(state, source, service, target, original_dst, rng=rng)
    if upstream is None:
        if service is not None and not service.passthrough:
            raise _Refused(
                OutboundFailure.NO_HEALTHY_UPSTREAM,
                f"service {service.key} has no healthy endpoint for port {original_dst.port}",
            )
        return OutboundPlan(
            kind=OutboundKind.PASSTHROUGH,
            source=source,
            original_dst=original_dst,
            connect_to=original_dst,
        )
    workload = upstream.workload
    _same_network(source, workload)
    if (
        service is None
        and workload.waypoint is not None
        and not _is_waypoint_of(state, workload.waypoint, source)
    ):
        return _via_waypoint(state, source, original_dst, workload.waypoint, None, rng=rng)
    return _direct(source, original_dst, upstream, service)


def _direct(
    source: Workload, original_dst: SocketAddr, upstream: Endpoint, service: Service | None
) -> OutboundPlan:
    """Straight to the pod: HBONE to its :15008 if it is in the mesh, else plaintext."""
    workload = upstream.workload
    families = service.ip_families if service else IpFamilies.AUTOMATIC
    pod_ip = _dialable_ip(workload, original_dst, families)
    app = SocketAddr(ip=pod_ip, port=upstream.port)
    if not workload.in_mesh:
        return OutboundPlan(
            kind=OutboundKind.PLAINTEXT,
            source=source,
            original_dst=original_dst,
            connect_to=app,
            destination_workload=workload,
            destination_service=service,
        )
    return OutboundPlan(
        kind=OutboundKind.HBONE,
        source=source,
        original_dst=original_dst,
        connect_to=SocketAddr(ip=pod_ip, port=HBONE_PORT),
        authority=app,
        expected_identities=_identities(workload, service),
        destination_workload=workload,
        destination_service=service,
    )


def _upstream(
    state: State,
    source: Workload,
    service: Service | None,
    target: NetworkAddress,
    original_dst: SocketAddr,
    *,
    rng: random.Random,
) -> Endpoint | None:
    if service is not None:
        if service.passthrough:
            return None
        return pick_endpoint(
            state, source, service, original_dst.port, mode=ResolutionMode.STANDARD, rng=rng
        )
    workload = state.workload_at(target)
    return None if workload is None else Endpoint(workload=workload, port=original_dst.port)


def _via_waypoint(
    state: State,
    source: Workload,
    original_dst: SocketAddr,
    waypoint: GatewayAddress,
    service: Service | None,
    *,
    rng: random.Random,
) -> OutboundPlan:
    """HBONE to the waypoint; the authority stays the original destination (VIP or pod IP)."""
    endpoint, waypoint_service, dial_hint = _resolve_waypoint(
        state, source, waypoint, original_dst, rng
    )
    workload = endpoint.workload
    _same_network(source, workload)
    families = waypoint_service.ip_families if waypoint_service else IpFamilies.AUTOMATIC
    ip = _dialable_ip(workload, dial_hint, families)
    return OutboundPlan(
        kind=OutboundKind.WAYPOINT,
        source=source,
        original_dst=original_dst,
        connect_to=SocketAddr(ip=ip, port=endpoint.port),
        authority=original_dst,
        expected_identities=_identities(workload, waypoint_service),
        destination_workload=workload,
        destination_service=service,
    )


def _resolve_waypoint(
    state: State,
    source: Workload,
    waypoint: GatewayAddress,
    original_dst: SocketAddr,
    rng: random.Random,
) -> tuple[Endpoint, Service | None, SocketAddr]:
    """The waypoint pod to use, its service, and the address whose IP family to prefer.

    A waypoint set but not resolvable fails closed (reference 2.8): the connection is refused
    rather than sent around the waypoint.
    """
    port = waypoint.hbone_mtls_port
    dest = waypoint.destination
    found = state.destination(dest)
    # A host-name reference adapts to the client's IP family; an address reference is literal.
    hint = (
        SocketAddr(ip=dest.address, port=port) if isinstance(dest, NetworkAddress) else original_dst
    )
    endpoint: Endpoint | None = None
    service: Service | None = None
    if isinstance(found, Workload):
        endpoint = Endpoint(workload=found, port=port)
    elif found is not None and not found.passthrough:
        service = found
        endpoint = pick_endpoint(state, source, found, port, mode=ResolutionMode.WAYPOINT, rng=rng)
    if endpoint is None:
        raise _Refused(
            OutboundFailure.UNKNOWN_WAYPOINT, f"waypoint {dest} not found or has no usable pod"
        )
    return endpoint, service, hint


def _is_waypoint_of(state: State, waypoint: GatewayAddress, source: Workload) -> bool:
    """Whether ``source`` is (one of the pods of) this waypoint: a sandwiched waypoint's own
    outbound traffic must not be sent back to itself."""
    found = state.destination(waypoint.destination)
    if isinstance(found, Workload):
        return found.uid == source.uid
    return found is not None and state.is_endpoint(found.key, source)


def _same_network(source: Workload, workload: Workload) -> None:
    if workload.network != source.network:
        raise _Refused(
            OutboundFailure.CROSS_NETWORK,
            f"{workload.uid} is on network {workload.network!r}, not {source.network!r}; "
            "reaching it needs double HBONE through an east-west gateway, which is not supported",
        )


def _dialable_ip(workload: Workload, hint: SocketAddr, families: IpFamilies) -> IPAddress:
    ip = select_ip(workload, hint, families)
    if ip is None:
        what = "only a DNS hostname, which is not supported" if workload.hostname else "no IP"
        raise _Refused(
            OutboundFailure.NO_VALID_DESTINATION,
            f"workload {workload.uid} has {what} usable for {hint} ({families.value})",
        )
    return ip


def _identities(workload: Workload, service: Service | None) -> tuple[Identity, ...]:
    """The pod's identity, then the service's extra SANs (reference 1.2 step 3)."""
    extra = service.subject_alt_names if service else ()
    return tuple(dict.fromkeys((workload.identity, *extra)))
