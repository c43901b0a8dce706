"""Istio's ambient acceptance scenarios (reference section 7), as far as ztunnel decides them.

Each test drives the client ztunnel's ``plan_outbound`` and, for HBONE, feeds the resulting
CONNECT into the destination ztunnel's ``plan_inbound`` (or, for clients without a ztunnel,
``plan_inbound_plaintext``). "L7" below means the plan went to a waypoint, "L4" that it did
not. Fixture as in Istio's main_test.go: an ambient namespace with captured pods, uncaptured
(out-of-mesh) pods, a service bound to a service waypoint and pods bound to a workload
waypoint, plus an out-of-mesh namespace.
"""

from __future__ import annotations

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.baggage import TraceParent
from ambientmesh.ztunnel.inbound import (
    HboneRequest,
    InboundPlan,
    InboundRejection,
    plan_inbound,
    plan_inbound_plaintext,
)
from ambientmesh.ztunnel.model import SocketAddr, Workload
from ambientmesh.ztunnel.outbound import (
    OutboundFailure,
    OutboundKind,
    OutboundPlan,
    OutboundRejection,
    plan_outbound,
)
from ambientmesh.ztunnel.policy import Action, Match, Scope, StringMatch
from ambientmesh.ztunnel.state import State, StateUpdate
from ambientmesh.ztunnel.telemetry import ResponseFlag

from .builders import (
    addr,
    from_principals,
    identity,
    key,
    pod,
    policy,
    rng,
    rule,
    service,
    state_of,
    waypoint_ref,
)

NS = "echo"
STRICT_POLICY = "istio-system/istio_converted_static_strict"

CAPTURED = pod(
    "captured-v1", "10.0.0.1", ns=NS, sa="captured", backs={key("captured", NS): {80: 8080}}
)
CAPTURED_2 = pod(
    "captured-v2", "10.0.0.2", ns=NS, sa="captured", backs={key("captured", NS): {80: 8080}}
)
UNCAPTURED = pod("uncaptured-v1", "10.0.1.1", ns=NS, sa="uncaptured", mesh=False)
SVC_WP_POD = pod(
    "svc-wp-v1",
    "10.0.2.1",
    ns=NS,
    sa="svc-wp",
    backs={key("service-addressed-waypoint", NS): {80: 8080}},
)
WL_WP_POD = pod(
    "wl-wp-v1",
    "10.0.3.1",
    ns=NS,
    sa="wl-wp",
    waypoint=waypoint_ref("waypoint-workload", NS),
    backs={key("workload-addressed-waypoint", NS): {80: 8080}},
)
WAYPOINT_SVC = pod(
    "waypoint-service-abc",
    "10.0.9.1",
    ns=NS,
    sa="waypoint-service",
    native_tunnel=True,
    backs={key("waypoint-service", NS): {15008: 15008}},
)
WAYPOINT_WL = pod(
    "waypoint-workload-abc",
    "10.0.9.2",
    ns=NS,
    sa="waypoint-workload",
    native_tunnel=True,
    backs={key("waypoint-workload", NS): {15008: 15008}},
)
EXTERNAL = pod(
    "external-v1",
    "10.0.8.1",
    ns="external",
    sa="external",
    mesh=False,
    backs={key("external", "external"): {80: 8080}},
)

BASE = (
    CAPTURED,
    CAPTURED_2,
    UNCAPTURED,
    SVC_WP_POD,
    WL_WP_POD,
    WAYPOINT_SVC,
    WAYPOINT_WL,
    EXTERNAL,
    service("captured", "10.96.0.1", ns=NS),
    service(
        "service-addressed-waypoint",
        "10.96.0.2",
        ns=NS,
        waypoint=waypoint_ref("waypoint-service", NS),
    ),
    service("workload-addressed-waypoint", "10.96.0.3", ns=NS),
    service("waypoint-service", "10.96.0.9", ns=NS, ports={15008: 15008}),
    service("waypoint-workload", "10.96.0.10", ns=NS, ports={15008: 15008}),
    service("external", "10.96.8.1", ns="external"),
)

WORKLOADS_BY_IP = {str(ip): w for w in BASE if isinstance(w, Workload) for ip in w.addresses}


def mesh(*extra: object) -> State:
    return state_of(*BASE, *extra)


def outbound(state: State, source: Workload, dst: str) -> OutboundPlan:
    plan = plan_outbound(state, source, addr(dst), rng())
    assert isinstance(plan, OutboundPlan), plan
    return plan


def deliver(
    state: State, plan: OutboundPlan, *, peer_identity: Identity | None = None
) -> InboundPlan | InboundRejection:
    """Play the HBONE hop: the CONNECT arrives at the next hop's in-pod :15008."""
    assert plan.uses_hbone
    assert plan.authority is not None
    local = WORKLOADS_BY_IP[str(plan.connect_to.ip)]
    request = HboneRequest(
        method="CONNECT",
        authority=str(plan.authority),
        local=plan.connect_to,
        peer=SocketAddr(ip=plan.source.addresses[0], port=40000),
        peer_identity=peer_identity or plan.source.identity,
        headers=plan.connect_headers(SocketAddr(ip=plan.source.addresses[0], port=40000), _trace()),
    )
    return plan_inbound(state, state.workload(local.uid), request)


def from_waypoint(state: State, waypoint: Workload, target: str) -> InboundPlan | InboundRejection:
    """A waypoint (Envoy, not captured) originates HBONE to the pod with its own identity."""
    target_addr = addr(target)
    local = WORKLOADS_BY_IP[str(target_addr.ip)]
    request = HboneRequest(
        method="CONNECT",
        authority=target,
        local=SocketAddr(ip=target_addr.ip, port=15008),
        peer=SocketAddr(ip=waypoint.addresses[0], port=40000),
        peer_identity=waypoint.identity,
    )
    return plan_inbound(state, state.workload(local.uid), request)


def plaintext(state: State, source: Workload, dst: str) -> InboundPlan | InboundRejection:
    """A client without ztunnel: kube-proxy already picked the pod; it lands on :15006."""
    target = addr(dst)
    local = WORKLOADS_BY_IP[str(target.ip)]
    return plan_inbound_plaintext(
        state, state.workload(local.uid), SocketAddr(ip=source.addresses[0], port=40000), target
    )


def _trace() -> TraceParent:
    return TraceParent(trace_id=1, parent_id=1)


def allowed(outcome: InboundPlan | InboundRejection) -> bool:
    return isinstance(outcome, InboundPlan)


def denied_with_401(outcome: InboundPlan | InboundRejection) -> bool:
    return isinstance(outcome, InboundRejection) and (outcome.status, outcome.response_flag) == (
        401,
        ResponseFlag.DENY,
    )


# --------------------------------------------------------------------------- services


def test_scenario_1_captured_to_captured_service_is_l4_and_keeps_the_client_ip() -> None:
    state = mesh()
    plan = outbound(state, CAPTURED_2, "10.96.0.1:80")
    assert plan.kind is OutboundKind.HBONE
    assert plan.connect_to.port == 15008
    assert all(
        "x-envoy-peer-metadata" not in name
        for name, _ in plan.connect_headers(addr("10.0.0.2:1"), _trace())
    )
    inbound = deliver(state, plan)
    assert isinstance(inbound, InboundPlan)
    assert str(inbound.source_ip) == "10.0.0.2"  # the server sees the client pod IP
    assert inbound.upstream.port == 8080


def test_scenario_3_uncaptured_client_bypasses_the_service_waypoint() -> None:
    """Known gap mirrored on purpose: a non-HBONE client reaches the pod at L4."""
    inbound = plaintext(mesh(), UNCAPTURED, "10.0.2.1:8080")
    assert isinstance(inbound, InboundPlan)
    assert inbound.upstream == addr("10.0.2.1:8080")


def test_scenario_2_captured_to_service_waypoint_goes_l7() -> None:
    plan = outbound(mesh(), CAPTURED, "10.96.0.2:80")
    assert plan.kind is OutboundKind.WAYPOINT
    assert plan.destination_workload == WAYPOINT_SVC
    assert str(plan.authority) == "10.96.0.2:80"


def test_scenario_4_workload_waypoint_is_not_used_for_service_addressed_traffic() -> None:
    for source in (CAPTURED, UNCAPTURED):
        plan = outbound(mesh(), source, "10.96.0.3:80")
        assert plan.kind is OutboundKind.HBONE
        assert plan.destination_workload == WL_WP_POD


def test_scenario_5_localhost_only_port_is_never_targeted_on_loopback() -> None:
    state = mesh()
    inbound = deliver(state, outbound(state, CAPTURED, "10.0.0.2:9999"))
    assert isinstance(inbound, InboundPlan)
    assert inbound.upstream == addr("10.0.0.2:9999")  # the shell's connect fails: 503 CONNECT
    assert inbound.connect_failed("refused").status == 503


def test_scenario_6_and_7_pod_ip_uses_the_workload_waypoint_never_the_service_one() -> None:
    state = mesh()
    assert outbound(state, CAPTURED, "10.0.3.1:8080").kind is OutboundKind.WAYPOINT
    seven = outbound(state, CAPTURED, "10.0.2.1:8080")
    assert seven.kind is OutboundKind.HBONE
    assert seven.destination_workload == SVC_WP_POD


def test_scenario_8_own_pod_ip_is_left_to_capture() -> None:
    """Scenario 8 is L4 because the capture rules accept `oif lo` traffic; ztunnel itself would
    treat such a connection as workload-addressed (here: HBONE to its own :15008)."""
    plan = outbound(mesh(), CAPTURED, "10.0.0.1:8080")
    assert plan.kind is OutboundKind.HBONE
    assert plan.connect_to == addr("10.0.0.1:15008")


def test_scenario_11_bogus_use_waypoint_fails_open_but_an_unresolvable_one_fails_closed() -> None:
    # istiod leaves `waypoint` unset for a use-waypoint naming a missing waypoint: plain L4.
    state = mesh()
    plan = outbound(state, CAPTURED, "10.96.0.1:80")
    assert plan.kind is OutboundKind.HBONE
    # A waypoint that is set but unknown to ztunnel refuses the connection.
    state.apply(
        StateUpdate(
            services=(
                service(
                    "captured", "10.96.0.1", ns=NS, waypoint=waypoint_ref("bogus-waypoint", NS)
                ),
            )
        )
    )
    refused = plan_outbound(state, CAPTURED, addr("10.96.0.1:80"), rng())
    assert isinstance(refused, OutboundRejection)
    assert refused.failure is OutboundFailure.UNKNOWN_WAYPOINT


# --------------------------------------------------------------------- PeerAuthentication

STATIC_STRICT = policy(
    "istio_converted_static_strict",
    rule(Match(not_principals=(StringMatch.presence(),))),
    ns="istio-system",
    action=Action.DENY,
    scope=Scope.WORKLOAD_SELECTOR,
)


def strict(workload: Workload, *names: str) -> Workload:
    """The workload as istiod sends it when its effective PeerAuthentication mode is STRICT."""
    return pod(
        workload.name,
        *(str(ip) for ip in workload.addresses),
        ns=workload.namespace,
        sa=workload.service_account,
        backs={
            k: {p.service_port: p.target_port for p in ports}
            for k, ports in workload.services.items()
        },
        authorization_policies=names or (STRICT_POLICY,),
    )


def test_scenario_14_permissive_allows_every_pair() -> None:
    state = mesh()
    assert allowed(deliver(state, outbound(state, CAPTURED, "10.96.0.1:80")))
    assert allowed(plaintext(state, UNCAPTURED, "10.0.0.1:8080"))
    assert outbound(state, CAPTURED, "10.0.1.1:8080").kind is OutboundKind.PLAINTEXT


def test_scenario_15_mesh_strict_denies_plaintext_but_not_hbone() -> None:
    state = mesh(STATIC_STRICT, strict(CAPTURED), strict(CAPTURED_2))
    rejected = plaintext(state, UNCAPTURED, "10.0.0.1:8080")
    assert isinstance(rejected, InboundRejection)
    assert rejected.response_flag is ResponseFlag.DENY
    assert "istio_converted_static_strict" in rejected.reason
    assert allowed(deliver(state, outbound(state, CAPTURED_2, "10.96.0.1:80")))


def test_scenario_16_workload_strict_with_permissive_ports() -> None:
    converted = policy(
        "converted_peer_authentication_strict-with-exceptions",
        rule(
            Match(
                not_principals=(StringMatch.presence(),),
                not_destination_ports=frozenset({18080, 19090}),
            )
        ),
        ns=NS,
        action=Action.DENY,
        scope=Scope.WORKLOAD_SELECTOR,
    )
    state = mesh(converted, strict(CAPTURED, f"{NS}/{converted.name}"))
    assert allowed(plaintext(state, UNCAPTURED, "10.0.0.1:18080"))
    assert allowed(plaintext(state, UNCAPTURED, "10.0.0.1:19090"))
    assert not allowed(plaintext(state, UNCAPTURED, "10.0.0.1:8080"))


def test_scenario_17_permissive_with_strict_ports() -> None:
    converted = policy(
        "converted_peer_authentication_port-strict",
        rule(Match(not_principals=(StringMatch.presence(),), destination_ports=frozenset({8080}))),
        ns=NS,
        action=Action.DENY,
        scope=Scope.WORKLOAD_SELECTOR,
    )
    state = mesh(converted, strict(CAPTURED, f"{NS}/{converted.name}"))
    assert not allowed(plaintext(state, UNCAPTURED, "10.0.0.1:8080"))
    assert allowed(plaintext(state, UNCAPTURED, "10.0.0.1:9090"))


# --------------------------------------------------------------------- AuthorizationPolicy


def test_scenario_18_allow_source_and_waypoint_principals() -> None:
    allow = policy(
        "allow-src-and-waypoint",
        rule(
            from_principals(
                f"cluster.local/ns/{NS}/sa/captured", f"cluster.local/ns/{NS}/sa/waypoint-service"
            )
        ),
        ns=NS,
    )
    state = mesh(allow)
    assert allowed(deliver(state, outbound(state, CAPTURED, "10.96.0.1:80")))
    assert allowed(from_waypoint(state, WAYPOINT_SVC, "10.0.2.1:8080"))


def test_scenario_19_allow_only_another_principal() -> None:
    allow = policy("allow-else", rule(from_principals("cluster.local/ns/something/sa/else")), ns=NS)
    state = mesh(allow)
    assert denied_with_401(deliver(state, outbound(state, CAPTURED, "10.96.0.1:80")))
    # An out-of-mesh destination is unaffected: policy is never evaluated at the source.
    assert outbound(state, CAPTURED, "10.96.8.1:80").kind is OutboundKind.PLAINTEXT
    # An uncaptured source to a mesh destination is denied (connection closed).
    assert not allowed(plaintext(state, UNCAPTURED, "10.0.0.1:8080"))


ALLOW_NOTHING = policy("allow-nothing", ns="istio-system", scope=Scope.GLOBAL)


def test_scenario_23_root_namespace_allow_nothing_denies_even_the_waypoint() -> None:
    state = mesh(ALLOW_NOTHING)
    assert denied_with_401(from_waypoint(state, WAYPOINT_SVC, "10.0.2.1:8080"))
    assert denied_with_401(deliver(state, outbound(state, CAPTURED, "10.0.2.1:8080")))


def test_scenario_24_and_25_allow_from_the_waypoint_only() -> None:
    """24: an ALLOW for the waypoint's SA admits traffic through it, direct traffic stays
    denied. 25: an allow-nothing bound to the waypoint GatewayClass (targetRefs) is never sent
    to ztunnel, so ztunnel keeps admitting the waypoint and the waypoint itself denies."""
    allow_waypoint = policy(
        "allow-waypoint", rule(from_principals(f"cluster.local/ns/{NS}/sa/waypoint-service")), ns=NS
    )
    state = mesh(ALLOW_NOTHING, allow_waypoint)
    assert allowed(from_waypoint(state, WAYPOINT_SVC, "10.0.2.1:8080"))
    assert denied_with_401(deliver(state, outbound(state, CAPTURED, "10.0.2.1:8080")))


# --------------------------------------------------------------------- raw HBONE (TestDirect)


def raw(
    state: State, local: Workload, authority: str, local_ip: str
) -> InboundPlan | InboundRejection:
    request = HboneRequest(
        method="CONNECT",
        authority=authority,
        local=addr(f"{local_ip}:15008"),
        peer=addr("10.0.0.1:40000"),
        peer_identity=identity("captured", NS),
    )
    return plan_inbound(state, local, request)


def status(outcome: InboundPlan | InboundRejection) -> int:
    return 200 if isinstance(outcome, InboundPlan) else outcome.status


def test_scenario_35_sandwiched_waypoint_accepts_only_what_it_serves() -> None:
    state = mesh()
    wp = WAYPOINT_SVC
    assert status(raw(state, wp, "10.96.0.2:80", "10.0.9.1")) == 200  # VIP it serves
    assert status(raw(state, wp, "10.96.0.1:80", "10.0.9.1")) == 400  # VIP it does not serve
    assert status(raw(state, wp, "10.0.0.1:8080", "10.0.9.1")) == 400  # pod it does not serve
    assert (
        status(raw(state, wp, "nosuch.echo.svc.cluster.local:80", "10.0.9.1")) == 503
    )  # named host


def test_scenario_36_direct_hbone_to_a_pod() -> None:
    state = mesh()
    pod_ip = "10.0.0.1"
    for internal in (15001, 15006, 15008):
        assert status(raw(state, CAPTURED, f"{pod_ip}:{internal}", pod_ip)) == 503
        assert status(raw(state, CAPTURED, f"127.0.0.1:{internal}", pod_ip)) == 400
    assert status(raw(state, CAPTURED, f"{pod_ip}:8080", pod_ip)) == 200  # exposed port
    workload_only = raw(state, CAPTURED, f"{pod_ip}:7070", pod_ip)  # in no service
    assert isinstance(workload_only, InboundPlan)
    assert workload_only.record.destination_service is None
