"""What to do with an inbound connection: HBONE CONNECT streams (reference 1.6, 2.5) and captured
plaintext (reference 2.6), decided as pure functions.

HBONE checks run in ztunnel's order, each with its CONNECT status: method (400), authority
(400), local workload known (503), destination validation (400), upstream resolution and
forbidden ports (503), then L4 authorization (401, flag DENY). Failures before authorization are
"early denies": logged, not counted in ``istio_tcp_*``. Connecting to the application (503,
flag CONNECT on failure) is the shell's job; on success it answers 200 with ``baggage``
describing this (destination) workload.
"""

from __future__ import annotations

from dataclasses import dataclass

from ambientmesh.errors import InvalidInput
from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.authz import Decision, authorize_workload
from ambientmesh.ztunnel.baggage import (
    BAGGAGE,
    FORWARDED,
    TRACEPARENT,
    X_FORWARDED_NETWORK,
    TraceParent,
    parse_baggage,
    parse_forwarded_host,
    workload_baggage,
)
from ambientmesh.ztunnel.model import (
    ZTUNNEL_PORTS,
    ApplicationTunnelProtocol,
    HboneAddress,
    HostPort,
    IPAddress,
    NetworkAddress,
    Service,
    SocketAddr,
    Workload,
    parse_authority,
)
from ambientmesh.ztunnel.policy import ConnectionFacts
from ambientmesh.ztunnel.state import State
from ambientmesh.ztunnel.telemetry import ConnectionRecord, Reporter, ResponseFlag, SecurityPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class HboneRequest:
    """One CONNECT stream on a verified mTLS connection to a pod's :15008."""

    method: str
    authority: str
    # Where the TLS connection arrived (the pod's IP and 15008) and who opened it.
    local: SocketAddr
    peer: SocketAddr
    # The SPIFFE identity of the verified client certificate.
    peer_identity: Identity
    # Lower-case names; repeated names allowed.
    headers: tuple[tuple[str, str], ...] = ()

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyProtocolHeader:
    """Write a PROXY v2 header first (the workload's ``application_tunnel``, reference 1.11)."""

    source: SocketAddr
    destination: SocketAddr
    # Sent as TLV 0xD0; None for plaintext.
    identity: Identity | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRejection:
    """Refuse: answer ``status`` on HBONE, close the socket on plaintext."""

    status: int
    # None for an early deny (logged only); DENY or CONNECT once the connection is counted.
    response_flag: ResponseFlag | None
    reason: str
    # What to count and log when ``response_flag`` is set.
    record: ConnectionRecord | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundPlan:
    """Connect to ``upstream`` from inside the pod, with ``source_ip`` as the source."""

    upstream: SocketAddr
    # The client's IP, kept so the application sees who called (IP_TRANSPARENT + freebind).
    source_ip: IPAddress
    local_workload: Workload
    # Kept to re-run authorization when policies change (``recheck``).
    facts: ConnectionFacts
    decision: Decision
    record: ConnectionRecord
    proxy_protocol: ProxyProtocolHeader | None = None
    # The client's trace context; None when absent or malformed (the shell makes a new one).
    trace: TraceParent | None = None
    # Headers of the 200 response (HBONE only): ``baggage`` describing this workload.
    response_headers: tuple[tuple[str, str], ...] = ()

    def connect_failed(self, error: str) -> InboundRejection:
        """The rejection to answer when the application could not be reached."""
        return InboundRejection(
            status=503,
            response_flag=ResponseFlag.CONNECT,
            reason=f"connecting to {self.upstream} failed: {error}",
            record=self.record,
        )


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.rejection = InboundRejection(status=status, response_flag=None, reason=reason)


def plan_inbound(
    state: State, local_workload: Workload | None, request: HboneRequest
) -> InboundPlan | InboundRejection:
    """Decide one HBONE CONNECT stream to ``local_workload`` (None: not known yet after waiting)."""
    try:
        return _plan_hbone(state, local_workload, request)
    except _Refused as refused:
        return refused.rejection


def _plan_hbone(
    state: State, local: Workload | None, request: HboneRequest
) -> InboundPlan | InboundRejection:
    if request.method != "CONNECT":
        raise _Refused(400, f"method {request.method!r} is not CONNECT")
    try:
        target = parse_authority(request.authority)
    except InvalidInput as error:
        raise _Refused(400, f"bad :authority: {error.message}") from None
    if local is None:
        raise _Refused(503, f"no workload known for {request.local.ip} yet")
    _validate_destination(state, local, request.local.ip, target)
    upstream, candidates = _resolve_upstream(state, local, request.local.ip, target)
    proxy_header = _proxy_header(local, request, target, candidates)

    facts = ConnectionFacts(
        src_ip=request.peer.ip,
        src_identity=request.peer_identity,
        dst_ip=upstream.ip,
        dst_port=upstream.port,
    )
    record = _hbone_record(state, local, request, target, candidates=candidates, upstream=upstream)
    decision = authorize_workload(state, local, facts)
    if not decision.allowed:
        return InboundRejection(
            status=401, response_flag=ResponseFlag.DENY, reason=decision.reason, record=record
        )
    traces = request.header_values(TRACEPARENT)
    baggage = workload_baggage(local)
    return InboundPlan(
        upstream=_tunnel_port(local, upstream),
        source_ip=request.peer.ip,
        local_workload=local,
        facts=facts,
        decision=decision,
        record=record,
        proxy_protocol=proxy_header,
        trace=TraceParent.parse(traces[0]) if traces else None,
        response_headers=((BAGGAGE, baggage),) if baggage else (),
    )


def _hbone_record(
    state: State,
    local: Workload,
    request: HboneRequest,
    target: HboneAddress,
    *,
    candidates: tuple[Service, ...],
    upstream: SocketAddr,
) -> ConnectionRecord:
    forwarded = request.header_values(FORWARDED)
    for_host = parse_forwarded_host(forwarded[0]) if forwarded else None
    return ConnectionRecord(
        reporter=Reporter.DESTINATION,
        src_addr=request.peer,
        dst_addr=request.local,  # as ztunnel logs it: dst.addr = :15008, hbone_addr = target
        hbone_authority=str(target),
        source_workload=_source_workload(state, local, request),
        source_identity=request.peer_identity,
        source_baggage=parse_baggage(request.header_values(BAGGAGE)),
        destination_workload=local,
        destination_identity=local.identity,
        destination_service=_guess_service(candidates, for_host, upstream.port, local),
        security_policy=SecurityPolicy.MUTUAL_TLS,
    )


def _validate_destination(
    state: State, local: Workload, local_ip: IPAddress, target: HboneAddress
) -> None:
    """An ``ip:port`` target must be this pod, unless this pod is the target's waypoint or
    terminates tunnels itself (reference 1.6). Host-name targets are checked when resolved."""
    if isinstance(target, HostPort) or target.ip == local_ip:
        return
    if local.application_tunnel is not None:
        return  # it receives the target in the PROXY header and decides itself
    if _is_waypoint_for(state, local, local_ip, target.ip):
        return
    raise _Refused(400, f"ip mismatch: CONNECT to {target.ip} arrived at {local_ip}")


def _is_waypoint_for(state: State, local: Workload, local_ip: IPAddress, ip: IPAddress) -> bool:
    found = state.address_at(NetworkAddress(network=local.network, address=ip))
    if found is None or found.waypoint is None:
        return False
    waypoint = state.destination(found.waypoint.destination)
    if isinstance(waypoint, Workload):
        return local_ip in waypoint.addresses
    return waypoint is not None and state.is_endpoint(waypoint.key, local)


def _resolve_upstream(
    state: State, local: Workload, local_ip: IPAddress, target: HboneAddress
) -> tuple[SocketAddr, tuple[Service, ...]]:
    """The application address (always this pod's IP) and the services it may be reached as."""
    if isinstance(target, HostPort):
        service = _service_named(state, local, target.hostname)
        port = local.endpoint_target_port(service.key, target.port)
        if port is None:
            declared = service.port(target.port)
            port = declared.target_port if declared is not None else 0
        if port == 0:
            raise _Refused(503, f"service {service.key} has no target port for {target.port}")
        upstream = SocketAddr(ip=local_ip, port=port)
        candidates: tuple[Service, ...] = (service,)
    else:
        upstream = SocketAddr(ip=local_ip, port=target.port)
        candidates = state.services_of(local)
    if upstream.port in ZTUNNEL_PORTS:
        raise _Refused(503, f"port {upstream.port} is ztunnel's own; refusing a loop")
    return upstream, candidates


def _service_named(state: State, local: Workload, hostname: str) -> Service:
    services = state.services_named(hostname)
    if not services:
        raise _Refused(503, f"no service has host name {hostname!r}")
    # No namespace in the authority: prefer a service in this workload's namespace.
    return max(services, key=lambda s: s.namespace == local.namespace)


def _tunnel_port(local: Workload, upstream: SocketAddr) -> SocketAddr:
    tunnel = local.application_tunnel
    if tunnel is not None and tunnel.port is not None:
        return SocketAddr(ip=upstream.ip, port=tunnel.port)
    return upstream


def _proxy_header(
    local: Workload,
    request: HboneRequest,
    target: HboneAddress,
    candidates: tuple[Service, ...],
) -> ProxyProtocolHeader | None:
    tunnel = local.application_tunnel
    if tunnel is None or tunnel.protocol is not ApplicationTunnelProtocol.PROXY:
        return None
    if isinstance(target, HostPort):
        # PROXY cannot carry a host name: send the service's VIP on our network, IPv4 first.
        vips = [a.address for a in candidates[0].addresses if a.network == local.network]
        if not vips:
            raise _Refused(503, f"service {target.hostname} has no VIP for the PROXY header")
        vip = min(vips, key=lambda ip: ip.version)
        destination = SocketAddr(ip=vip, port=target.port)
    else:
        destination = target
    return ProxyProtocolHeader(
        source=request.peer, destination=destination, identity=request.peer_identity
    )


def _source_workload(state: State, local: Workload, request: HboneRequest) -> Workload | None:
    """The peer's workload by IP, unless it came through a gateway from another network (then
    the IP is the gateway's; baggage describes the source instead)."""
    for network in request.header_values(X_FORWARDED_NETWORK):
        if network.strip().lower() != local.network.lower():
            return None
    return state.workload_at(NetworkAddress(network=local.network, address=request.peer.ip))


def _guess_service(
    candidates: tuple[Service, ...], for_host: str | None, port: int, local: Workload
) -> Service | None:
    """Which service to report: the one ``forwarded`` named, if it is one of ours; else the
    first whose (or whose endpoint mapping's) target port is the port reached."""
    for service in candidates:
        if for_host is not None and service.hostname == for_host:
            return service
    for service in candidates:
        for declared in service.ports:
            if declared.target_port == port:
                return service
            if local.endpoint_target_port(service.key, declared.service_port) == port:
                return service
    return None


def plan_inbound_plaintext(
    state: State, local_workload: Workload | None, peer: SocketAddr, original_dst: SocketAddr
) -> InboundPlan | InboundRejection:
    """Decide a captured plaintext connection (port 15006): no identity, so any policy that
    needs one denies it, which is how STRICT is enforced (reference 2.6, 4.5). A denied
    connection is closed; there is no waypoint enforcement here."""
    if original_dst.port in ZTUNNEL_PORTS:
        return _early(f"{original_dst} is ztunnel's own port; refusing a loop")
    if local_workload is None:
        return _early(f"no workload known for {original_dst.ip} yet")
    local = local_workload
    if original_dst.ip not in local.addresses:
        return _early(f"{original_dst.ip} is not an address of {local.uid}")
    facts = ConnectionFacts(
        src_ip=peer.ip, src_identity=None, dst_ip=original_dst.ip, dst_port=original_dst.port
    )
    record = ConnectionRecord(
        reporter=Reporter.DESTINATION,
        src_addr=peer,
        dst_addr=original_dst,
        source_workload=state.workload_at(NetworkAddress(network=local.network, address=peer.ip)),
        destination_workload=local,
        destination_service=_guess_service(
            state.services_of(local), None, original_dst.port, local
        ),
        security_policy=SecurityPolicy.UNKNOWN,
    )
    decision = authorize_workload(state, local, facts)
    if not decision.allowed:
        return InboundRejection(
            status=401, response_flag=ResponseFlag.DENY, reason=decision.reason, record=record
        )
    return InboundPlan(
        upstream=original_dst,
        source_ip=peer.ip,
        local_workload=local,
        facts=facts,
        decision=decision,
        record=record,
    )


def _early(reason: str) -> InboundRejection:
    return InboundRejection(status=503, response_flag=None, reason=reason)


def recheck(state: State, plan: InboundPlan) -> Decision:
    """Re-run authorization for a live connection after a policy change (reference 1.6): the
    shell closes it when the decision is now a deny."""
    local = state.workload(plan.local_workload.uid) or plan.local_workload
    return authorize_workload(state, local, plan.facts)
