"""plan_outbound: reference 2.3 step by step, as Istio's ztunnel decides outbound connections."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ambientmesh.ztunnel.baggage import TraceParent
from ambientmesh.ztunnel.model import (
    IpFamilies,
    LoadBalancing,
    LoadBalancingMode,
    NetworkMode,
)
from ambientmesh.ztunnel.outbound import (
    OutboundFailure,
    OutboundKind,
    OutboundPlan,
    OutboundRejection,
    plan_outbound,
)
from ambientmesh.ztunnel.telemetry import SecurityPolicy, traffic_labels

from .builders import (
    addr,
    host,
    identity,
    key,
    pod,
    rng,
    service,
    state_of,
    waypoint_at,
    waypoint_ref,
)

CLIENT = pod("client", "10.0.0.1", node="node-a")
WORLD = state_of(
    CLIENT,
    # an in-mesh service with one endpoint
    service("server", "10.96.0.10"),
    pod("server", "10.0.1.1", backs={key("server"): {80: 8080}}),
    # an out-of-mesh workload and its service
    service("legacy", "10.96.0.20"),
    pod("legacy", "10.0.2.1", mesh=False, backs={key("legacy"): {80: 8080}}),
    # a waypoint and a service bound to it (service-addressed waypoint)
    service("waypoint", "10.96.0.30", ports={15008: 15008}),
    pod("waypoint", "10.0.3.1", native_tunnel=True, backs={key("waypoint"): {15008: 15008}}),
    service("reviews", "10.96.0.40", waypoint=waypoint_ref("waypoint")),
    pod("reviews", "10.0.4.1", backs={key("reviews"): {80: 8080}}),
    # a pod bound to the waypoint for workload-addressed traffic
    service("ratings", "10.96.0.50"),
    pod(
        "ratings", "10.0.5.1", waypoint=waypoint_ref("waypoint"), backs={key("ratings"): {80: 8080}}
    ),
    # a named target port: resolved per endpoint
    service("named", "10.96.0.60", ports={80: 0}),
    pod("named", "10.0.6.1", backs={key("named"): {80: 9090}}),
    # service without endpoints, and a PASSTHROUGH one
    service("empty", "10.96.0.70"),
    service(
        "passthrough",
        "10.96.0.80",
        load_balancing=LoadBalancing(mode=LoadBalancingMode.PASSTHROUGH),
    ),
    # a service whose waypoint does not exist at ztunnel (set but unresolvable)
    service("broken", "10.96.0.90", waypoint=waypoint_ref("missing")),
    pod("broken", "10.0.9.1", backs={key("broken"): {80: 8080}}),
)


@dataclass(frozen=True)
class Expect:
    kind: OutboundKind
    connect_to: str
    authority: str | None
    workload: str | None
    service: str | None
    identities: tuple[str, ...] = ()


CASES = {
    "2.3 step 2+5: service VIP -> endpoint, HBONE to pod:15008, authority pod:targetPort": (
        "10.96.0.10:80",
        Expect(
            OutboundKind.HBONE, "10.0.1.1:15008", "10.0.1.1:8080", "server", "server", ("server",)
        ),
    ),
    "2.3 step 2+5: pod IP goes direct, same port, no service": (
        "10.0.1.1:8080",
        Expect(OutboundKind.HBONE, "10.0.1.1:15008", "10.0.1.1:8080", "server", None, ("server",)),
    ),
    "2.3 step 5: out-of-mesh endpoint of a service is reached in plaintext": (
        "10.96.0.20:80",
        Expect(OutboundKind.PLAINTEXT, "10.0.2.1:8080", None, "legacy", "legacy"),
    ),
    "2.3 step 5: out-of-mesh pod IP is reached in plaintext on the same port": (
        "10.0.2.1:9999",
        Expect(OutboundKind.PLAINTEXT, "10.0.2.1:9999", None, "legacy", None),
    ),
    "2.3 step 2: unknown address passes through as addressed": (
        "192.0.2.7:443",
        Expect(OutboundKind.PASSTHROUGH, "192.0.2.7:443", None, None, None),
    ),
    "2.3 step 1: service with a waypoint goes to the waypoint, authority = VIP:port": (
        "10.96.0.40:80",
        Expect(
            OutboundKind.WAYPOINT,
            "10.0.3.1:15008",
            "10.96.0.40:80",
            "waypoint",
            "reviews",
            ("waypoint",),
        ),
    ),
    "scenario 7: pod IP of a service-waypoint backend skips the service waypoint": (
        "10.0.4.1:8080",
        Expect(
            OutboundKind.HBONE, "10.0.4.1:15008", "10.0.4.1:8080", "reviews", None, ("reviews",)
        ),
    ),
    "scenario 4: workload waypoint is not used for service-addressed traffic": (
        "10.96.0.50:80",
        Expect(
            OutboundKind.HBONE,
            "10.0.5.1:15008",
            "10.0.5.1:8080",
            "ratings",
            "ratings",
            ("ratings",),
        ),
    ),
    "2.3 step 4 / scenario 6: pod IP with a workload waypoint goes to the waypoint": (
        "10.0.5.1:8080",
        Expect(
            OutboundKind.WAYPOINT,
            "10.0.3.1:15008",
            "10.0.5.1:8080",
            "waypoint",
            None,
            ("waypoint",),
        ),
    ),
    "2.4: named target port maps per endpoint": (
        "10.96.0.60:80",
        Expect(OutboundKind.HBONE, "10.0.6.1:15008", "10.0.6.1:9090", "named", "named", ("named",)),
    ),
    "2.3 step 2: PASSTHROUGH service is sent to the VIP as addressed": (
        "10.96.0.80:80",
        Expect(OutboundKind.PASSTHROUGH, "10.96.0.80:80", None, None, None),
    ),
    "2.3 note: a pod may call a non-ztunnel port of its own IP (goes over HBONE to itself)": (
        "10.0.0.1:8080",
        Expect(OutboundKind.HBONE, "10.0.0.1:15008", "10.0.0.1:8080", "client", None, ("client",)),
    ),
}


@pytest.mark.parametrize(("dst", "expect"), CASES.values(), ids=CASES.keys())
def test_plan_outbound(dst: str, expect: Expect) -> None:
    plan = plan_outbound(WORLD, CLIENT, addr(dst), rng())
    assert isinstance(plan, OutboundPlan), plan
    assert plan.kind is expect.kind
    assert str(plan.connect_to) == expect.connect_to
    assert (str(plan.authority) if plan.authority else None) == expect.authority
    assert (
        plan.destination_workload.name if plan.destination_workload else None
    ) == expect.workload
    assert (plan.destination_service.name if plan.destination_service else None) == expect.service
    assert plan.expected_identities == tuple(identity(sa) for sa in expect.identities)
    assert plan.original_dst == addr(dst)


REJECTIONS = {
    "2.3 step 0: loopback 15001 is a self-call": ("127.0.0.1:15001", OutboundFailure.SELF_CALL),
    "2.3 step 0: loopback 15006 is a self-call": ("127.0.0.1:15006", OutboundFailure.SELF_CALL),
    "2.3 step 0: loopback 15008 is a self-call": ("127.0.0.1:15008", OutboundFailure.SELF_CALL),
    "2.3 step 0: own pod IP on 15008 is a self-call": ("10.0.0.1:15008", OutboundFailure.SELF_CALL),
    "2.3 step 0: IPv6 loopback is a self-call": ("[::1]:15001", OutboundFailure.SELF_CALL),
    "2.3 step 2: service without endpoints fails (no healthy upstream)": (
        "10.96.0.70:80",
        OutboundFailure.NO_HEALTHY_UPSTREAM,
    ),
    "2.3 step 2: a port the service does not declare fails": (
        "10.96.0.10:81",
        OutboundFailure.NO_HEALTHY_UPSTREAM,
    ),
    "2.8: a waypoint that is set but unresolvable fails closed": (
        "10.96.0.90:80",
        OutboundFailure.UNKNOWN_WAYPOINT,
    ),
}


@pytest.mark.parametrize(("dst", "failure"), REJECTIONS.values(), ids=REJECTIONS.keys())
def test_plan_outbound_rejects(dst: str, failure: OutboundFailure) -> None:
    plan = plan_outbound(WORLD, CLIENT, addr(dst), rng())
    assert isinstance(plan, OutboundRejection), plan
    assert plan.failure is failure
    assert plan.reason


def test_loopback_on_an_ordinary_port_is_not_a_self_call() -> None:
    plan = plan_outbound(WORLD, CLIENT, addr("127.0.0.1:8080"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.kind is OutboundKind.PASSTHROUGH


def test_expected_identities_are_pod_identity_and_service_sans() -> None:
    """Reference 1.2 step 3: the server may present the pod identity or any service SAN."""
    extra = identity("canonical-server", ns="prod")
    state = state_of(
        CLIENT,
        service("server", "10.96.0.10", subject_alt_names=(extra,)),
        pod("server", "10.0.1.1", backs={key("server"): {80: 8080}}),
    )
    plan = plan_outbound(state, CLIENT, addr("10.96.0.10:80"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.expected_identities == (identity("server"), extra)


def test_a_sandwiched_waypoint_does_not_send_its_own_traffic_back_to_itself() -> None:
    """Istio's check_from_waypoint: the source *is* the destination's workload waypoint."""
    waypoint = pod("waypoint", "10.0.3.1", backs={key("waypoint"): {15008: 15008}})
    target = pod("ratings", "10.0.5.1", waypoint=waypoint_ref("waypoint"))
    state = state_of(waypoint, target, service("waypoint", "10.96.0.30", ports={15008: 15008}))
    plan = plan_outbound(state, waypoint, addr("10.0.5.1:8080"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.kind is OutboundKind.HBONE
    assert str(plan.connect_to) == "10.0.5.1:15008"
    # Any other source still goes through the waypoint.
    other = plan_outbound(
        state_of(CLIENT, waypoint, target, service("waypoint", "10.96.0.30", ports={15008: 15008})),
        CLIENT,
        addr("10.0.5.1:8080"),
        rng(),
    )
    assert isinstance(other, OutboundPlan)
    assert other.kind is OutboundKind.WAYPOINT


@pytest.mark.parametrize(
    "reference",
    [waypoint_at("10.0.3.1"), waypoint_at("10.96.0.30")],
    ids=["waypoint referenced by pod IP", "waypoint referenced by VIP"],
)
def test_waypoint_referenced_by_address(reference: object) -> None:
    state = state_of(
        CLIENT,
        service("waypoint", "10.96.0.30", ports={15008: 15008}),
        pod("waypoint", "10.0.3.1", backs={key("waypoint"): {15008: 15008}}),
        service("reviews", "10.96.0.40", waypoint=reference),
        pod("reviews", "10.0.4.1", backs={key("reviews"): {80: 8080}}),
    )
    plan = plan_outbound(state, CLIENT, addr("10.96.0.40:80"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.kind is OutboundKind.WAYPOINT
    assert str(plan.connect_to) == "10.0.3.1:15008"
    assert str(plan.authority) == "10.96.0.40:80"


def test_waypoint_service_without_pods_fails_closed() -> None:
    state = state_of(
        CLIENT,
        service("waypoint", "10.96.0.30", ports={15008: 15008}),
        service("reviews", "10.96.0.40", waypoint=waypoint_ref("waypoint")),
        pod("reviews", "10.0.4.1", backs={key("reviews"): {80: 8080}}),
    )
    plan = plan_outbound(state, CLIENT, addr("10.96.0.40:80"), rng())
    assert isinstance(plan, OutboundRejection)
    assert plan.failure is OutboundFailure.UNKNOWN_WAYPOINT


def test_shared_vip_prefers_the_service_in_the_source_namespace() -> None:
    """ztunnel looks VIPs up preferring the client's namespace (ServiceEntries may share one)."""
    state = state_of(
        CLIENT,
        service("api", "10.96.1.1", ns="other", canonical=True),
        pod("api-other", "10.0.7.1", ns="other", backs={key("api", "other"): {80: 8080}}),
        service("api", "10.96.1.1"),
        pod("api-here", "10.0.7.2", backs={key("api"): {80: 8080}}),
    )
    plan = plan_outbound(state, CLIENT, addr("10.96.1.1:80"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.destination_service is not None
    assert plan.destination_service.namespace == "default"
    assert str(plan.connect_to) == "10.0.7.2:15008"


def test_endpoint_on_another_network_is_refused_as_unsupported_double_hbone() -> None:
    remote = pod("remote", "10.1.0.1", network="west", backs={key("server"): {80: 8080}})
    state = state_of(CLIENT, service("server", "10.96.0.10"), remote)
    plan = plan_outbound(state, CLIENT, addr("10.96.0.10:80"), rng())
    assert isinstance(plan, OutboundRejection)
    assert plan.failure is OutboundFailure.CROSS_NETWORK


def test_hostname_only_workload_has_no_valid_destination() -> None:
    dns = pod("dns-backed", backs={key("external"): {443: 443}}, hostname="api.example.com")
    state = state_of(CLIENT, service("external", "240.240.0.1", ports={443: 443}), dns)
    plan = plan_outbound(state, CLIENT, addr("240.240.0.1:443"), rng())
    assert isinstance(plan, OutboundRejection)
    assert plan.failure is OutboundFailure.NO_VALID_DESTINATION
    assert "hostname" in plan.reason


@pytest.mark.parametrize(
    ("dst", "families", "expected"),
    [
        ("10.96.2.1:80", IpFamilies.AUTOMATIC, "10.0.8.1:15008"),
        ("[fd00::96:1]:80", IpFamilies.AUTOMATIC, "[fd00::8:1]:15008"),
        ("[fd00::96:1]:80", IpFamilies.IPV4_ONLY, "10.0.8.1:15008"),
        ("10.96.2.1:80", IpFamilies.IPV6_ONLY, "[fd00::8:1]:15008"),
    ],
    ids=["v4 VIP -> v4 pod", "v6 VIP -> v6 pod", "IPV4_ONLY wins", "IPV6_ONLY wins"],
)
def test_dual_stack_address_choice(dst: str, families: IpFamilies, expected: str) -> None:
    """Reference 2.4: prefer the client's family unless the service restricts families."""
    state = state_of(
        CLIENT,
        service("dual", "10.96.2.1", "fd00::96:1", ip_families=families),
        pod("dual", "10.0.8.1", "fd00::8:1", backs={key("dual"): {80: 8080}}),
    )
    plan = plan_outbound(state, CLIENT, addr(dst), rng())
    assert isinstance(plan, OutboundPlan)
    assert str(plan.connect_to) == expected


def test_host_network_pods_are_not_found_by_ip() -> None:
    hostnet = pod("node-exporter", "192.168.1.10", network_mode=NetworkMode.HOST_NETWORK)
    plan = plan_outbound(state_of(CLIENT, hostnet), CLIENT, addr("192.168.1.10:9100"), rng())
    assert isinstance(plan, OutboundPlan)
    assert plan.kind is OutboundKind.PASSTHROUGH


def test_outbound_record_and_headers() -> None:
    """Reference 1.5 (headers) and 5.1: the source reporter sees mutual_tls for HBONE."""
    plan = plan_outbound(WORLD, CLIENT, addr("10.96.0.10:80"), rng())
    assert isinstance(plan, OutboundPlan)
    client = addr("10.0.0.1:40000")
    trace = TraceParent(trace_id=0xABC, parent_id=0xDEF)
    headers = dict(plan.connect_headers(client, trace))
    assert headers["forwarded"] == f'for="10.0.0.1:40000";host={host("server")}'
    assert headers["traceparent"] == trace.header
    assert "k8s.deployment.name=client" in headers["baggage"]
    labels = dict(traffic_labels(plan.record(client)))
    assert labels["reporter"] == "source"
    assert labels["connection_security_policy"] == SecurityPolicy.MUTUAL_TLS.value
    assert labels["destination_service"] == host("server")
    assert labels["destination_principal"] == "spiffe://cluster.local/ns/default/sa/server"
    assert labels["source_principal"] == "spiffe://cluster.local/ns/default/sa/client"


def test_plaintext_record_is_unknown_security_policy() -> None:
    plan = plan_outbound(WORLD, CLIENT, addr("192.0.2.7:443"), rng())
    assert isinstance(plan, OutboundPlan)
    record = plan.record(addr("10.0.0.1:40000"))
    assert record.security_policy is SecurityPolicy.UNKNOWN
    labels = dict(traffic_labels(record))
    assert labels["destination_workload"] == "unknown"
    assert labels["connection_security_policy"] == "unknown"
