"""plan_inbound and plan_inbound_plaintext: reference 1.6 (ordered checks), 2.5 and 2.6."""

from __future__ import annotations

import pytest

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.baggage import TraceParent
from ambientmesh.ztunnel.inbound import (
    HboneRequest,
    InboundPlan,
    InboundRejection,
    ProxyProtocolHeader,
    plan_inbound,
    plan_inbound_plaintext,
    recheck,
)
from ambientmesh.ztunnel.model import (
    ApplicationTunnel,
    ApplicationTunnelProtocol,
    Workload,
)
from ambientmesh.ztunnel.policy import Action, Rule, Scope
from ambientmesh.ztunnel.state import State, StateUpdate
from ambientmesh.ztunnel.telemetry import ResponseFlag, SecurityPolicy, traffic_labels

from .builders import (
    addr,
    from_principals,
    host,
    identity,
    key,
    pod,
    policy,
    rule,
    service,
    state_of,
    waypoint_at,
    waypoint_ref,
)

CLIENT = pod("client", "10.0.0.1")
SERVER = pod("server", "10.0.1.1", backs={key("server"): {80: 8080}})
WAYPOINT = pod("waypoint", "10.0.3.1", backs={key("waypoint"): {15008: 15008}})


def world(*extra: object) -> State:
    return state_of(
        CLIENT,
        SERVER,
        service("server", "10.96.0.10"),
        WAYPOINT,
        service("waypoint", "10.96.0.30", ports={15008: 15008}),
        service("reviews", "10.96.0.40", waypoint=waypoint_ref("waypoint")),
        pod("ratings", "10.0.5.1", waypoint=waypoint_ref("waypoint")),
        pod("details", "10.0.6.1", waypoint=waypoint_at("10.0.3.1")),
        *extra,
    )


def req(
    authority: str,
    *,
    method: str = "CONNECT",
    local: str = "10.0.1.1:15008",
    peer: str = "10.0.0.1:40000",
    peer_identity: Identity | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> HboneRequest:
    return HboneRequest(
        method=method,
        authority=authority,
        local=addr(local),
        peer=addr(peer),
        peer_identity=peer_identity or identity("client"),
        headers=headers,
    )


DENY_ALL = policy("deny-all", Rule(), action=Action.DENY)

# (request, local workload (None = unknown), extra state, status, flag, reason fragment)
REJECTIONS = {
    "1.6 step 1: method must be CONNECT": (
        req("10.0.1.1:8080", method="GET"),
        SERVER,
        (),
        400,
        "not CONNECT",
    ),
    "1.6 step 2: authority without a port": (req("10.0.1.1"), SERVER, (), 400, "bad :authority"),
    "1.6 step 2: authority that is not host:port": (
        req("a b:80"),
        SERVER,
        (),
        400,
        "bad :authority",
    ),
    "1.6 step 3: local workload unknown": (req("10.0.1.1:8080"), None, (), 503, "no workload"),
    "1.6 step 4: ip:port must be this pod (ip mismatch)": (
        req("10.0.1.2:8080"),
        SERVER,
        (),
        400,
        "ip mismatch",
    ),
    "1.6 step 4 / scenario 36: loopback authority is an ip mismatch": (
        req("127.0.0.1:8080"),
        SERVER,
        (),
        400,
        "ip mismatch",
    ),
    "1.6 step 4 / scenario 35: a VIP without this pod as waypoint is refused": (
        req("10.96.0.10:80", local="10.0.3.1:15008"),
        WAYPOINT,
        (),
        400,
        "ip mismatch",
    ),
    "1.6 step 5: unknown host name": (req(f"{host('nosuch')}:80"), SERVER, (), 503, "no service"),
    "1.6 step 5: host name with a port the service lacks": (
        req(f"{host('server')}:81"),
        SERVER,
        (),
        503,
        "no target port",
    ),
    "1.6 step 5 / scenario 36: 15001 is forbidden": (
        req("10.0.1.1:15001"),
        SERVER,
        (),
        503,
        "ztunnel's own",
    ),
    "1.6 step 5 / scenario 36: 15006 is forbidden": (
        req("10.0.1.1:15006"),
        SERVER,
        (),
        503,
        "ztunnel's own",
    ),
    "1.6 step 5 / scenario 36: 15008 is forbidden": (
        req("10.0.1.1:15008"),
        SERVER,
        (),
        503,
        "ztunnel's own",
    ),
    "1.6 order: method is checked before the authority": (
        req("garbage", method="POST"),
        SERVER,
        (),
        400,
        "not CONNECT",
    ),
    "1.6 order: authority before the local workload": (
        req("garbage"),
        None,
        (),
        400,
        "bad :authority",
    ),
    "1.6 order: local workload before destination validation": (
        req("10.0.1.2:8080"),
        None,
        (),
        503,
        "no workload",
    ),
    "1.6 order: destination validation before forbidden ports": (
        req("10.0.1.2:15008"),
        SERVER,
        (),
        400,
        "ip mismatch",
    ),
    "1.6 order: forbidden ports before authorization": (
        req("10.0.1.1:15006"),
        SERVER,
        (DENY_ALL,),
        503,
        "ztunnel's own",
    ),
}


@pytest.mark.parametrize(
    ("request_", "local", "extra", "status", "reason"), REJECTIONS.values(), ids=REJECTIONS.keys()
)
def test_early_rejections(
    request_: HboneRequest,
    local: Workload | None,
    extra: tuple[object, ...],
    status: int,
    reason: str,
) -> None:
    outcome = plan_inbound(world(*extra), local, request_)
    assert isinstance(outcome, InboundRejection), outcome
    assert outcome.status == status
    assert outcome.response_flag is None  # early denies are logged, not counted
    assert outcome.record is None
    assert reason in outcome.reason


def test_authorization_deny_is_401_with_flag_deny_and_a_record() -> None:
    """Reference 1.6: L4 authorization failure answers 401 and counts with response_flags=DENY."""
    outcome = plan_inbound(world(DENY_ALL), SERVER, req("10.0.1.1:8080"))
    assert isinstance(outcome, InboundRejection)
    assert (outcome.status, outcome.response_flag) == (401, ResponseFlag.DENY)
    assert "default/deny-all" in outcome.reason
    assert outcome.record is not None
    labels = dict(traffic_labels(outcome.record, ResponseFlag.DENY))
    assert labels["response_flags"] == "DENY"
    assert labels["reporter"] == "destination"


def test_success_connects_to_the_pod_preserving_the_client_ip() -> None:
    """Reference 2.5: connect to pod_ip:port with source = the HBONE peer's IP; 200 + baggage."""
    plan = plan_inbound(world(), SERVER, req("10.0.1.1:8080"))
    assert isinstance(plan, InboundPlan), plan
    assert plan.upstream == addr("10.0.1.1:8080")
    assert str(plan.source_ip) == "10.0.0.1"
    assert plan.decision.allowed
    assert plan.facts.dst_port == 8080
    assert plan.facts.src_identity == identity("client")
    assert plan.proxy_protocol is None
    baggage = dict(plan.response_headers)["baggage"]
    assert "k8s.deployment.name=server" in baggage
    assert "k8s.namespace.name=default" in baggage
    record = plan.record
    assert record.security_policy is SecurityPolicy.MUTUAL_TLS
    assert str(record.dst_addr) == "10.0.1.1:15008"
    assert record.hbone_authority == "10.0.1.1:8080"
    assert record.source_workload == CLIENT
    assert record.destination_service is not None
    assert record.destination_service.name == "server"


def test_connect_failure_is_503_with_flag_connect() -> None:
    """Scenario 5/36: a port bound only on localhost cannot be reached at pod_ip:port."""
    plan = plan_inbound(world(), SERVER, req("10.0.1.1:9999"))
    assert isinstance(plan, InboundPlan)
    assert not plan.upstream.ip.is_loopback
    failure = plan.connect_failed("connection refused")
    assert (failure.status, failure.response_flag) == (503, ResponseFlag.CONNECT)
    assert failure.record == plan.record


@pytest.mark.parametrize(
    ("authority", "local", "extra", "upstream"),
    [
        (f"{host('server')}:80", SERVER, (), "10.0.1.1:8080"),
        (
            f"{host('named')}:80",
            pod("server", "10.0.1.1", backs={key("named"): {80: 9090}}),
            (service("named", "10.96.0.60", ports={80: 0}),),
            "10.0.1.1:9090",
        ),
        (
            "api.example.com:443",
            SERVER,
            (
                service("api", ns="other", hostname="api.example.com", ports={443: 7070}),
                service("api", ns="default", hostname="api.example.com", ports={443: 6060}),
            ),
            "10.0.1.1:6060",
        ),
    ],
    ids=[
        "host name: service target port",
        "host name: endpoint mapping for a named port",
        "host name shared across namespaces: prefer the local namespace",
    ],
)
def test_hostname_authority_maps_the_service_port(
    authority: str, local: Workload, extra: tuple[object, ...], upstream: str
) -> None:
    plan = plan_inbound(world(*extra), local, req(authority))
    assert isinstance(plan, InboundPlan), plan
    assert plan.upstream == addr(upstream)


@pytest.mark.parametrize(
    "authority",
    ["10.96.0.40:80", "10.0.5.1:8080", "10.0.6.1:8080"],
    ids=[
        "service VIP whose waypoint (by host name) is this pod",
        "pod whose workload waypoint (by host name) is this pod",
        "pod whose workload waypoint (by address) is this pod",
    ],
)
def test_waypoint_exception_to_destination_validation(authority: str) -> None:
    """Reference 1.6 step 4 / 2.8: a sandwiched waypoint accepts traffic for its targets; the
    connection goes to the waypoint pod itself on the authority's port."""
    plan = plan_inbound(world(), WAYPOINT, req(authority, local="10.0.3.1:15008"))
    assert isinstance(plan, InboundPlan), plan
    assert plan.upstream == addr(f"10.0.3.1:{addr(authority).port}")


def test_application_tunnel_skips_validation_and_sends_a_proxy_header() -> None:
    """Reference 1.11: with application_tunnel PROXY the target travels in the PROXY header."""
    tunnel = ApplicationTunnel(protocol=ApplicationTunnelProtocol.PROXY, port=15088)
    local = pod("waypoint", "10.0.3.1", application_tunnel=tunnel)
    plan = plan_inbound(world(), local, req("10.96.0.10:80", local="10.0.3.1:15008"))
    assert isinstance(plan, InboundPlan), plan
    assert plan.upstream == addr("10.0.3.1:15088")
    assert plan.proxy_protocol == ProxyProtocolHeader(
        source=addr("10.0.0.1:40000"),
        destination=addr("10.96.0.10:80"),
        identity=identity("client"),
    )
    by_name = plan_inbound(world(), local, req(f"{host('server')}:80", local="10.0.3.1:15008"))
    assert isinstance(by_name, InboundPlan)
    assert by_name.proxy_protocol is not None
    assert by_name.proxy_protocol.destination == addr("10.96.0.10:80")


@pytest.mark.parametrize(
    ("forwarded", "authority", "expected"),
    [
        (f'for="10.0.0.1:1";host={host("second")}', "10.0.1.1:8080", "second"),
        (f'for="10.0.0.1:1";host={host("elsewhere")}', "10.0.1.1:8080", "first"),
        (None, "10.0.1.1:9090", "second"),
        (None, "10.0.1.1:7777", None),
    ],
    ids=[
        "forwarded host picks one of our services",
        "a host that is not ours is ignored",
        "else the target port decides",
        "no service matches",
    ],
)
def test_destination_service_guess(
    forwarded: str | None, authority: str, expected: str | None
) -> None:
    """Reference 1.5/5.1: `forwarded host=` only chooses among the local workload's services."""
    local = pod("server", "10.0.1.1", backs={key("first"): {80: 8080}, key("second"): {90: 9090}})
    extra = (
        service("first", "10.96.0.1"),
        service("second", "10.96.0.2", ports={90: 9090, 91: 8080}),
        service("elsewhere", "10.96.0.3"),
    )
    headers = (("forwarded", forwarded),) if forwarded else ()
    plan = plan_inbound(world(*extra), local, req(authority, headers=headers))
    assert isinstance(plan, InboundPlan)
    found = plan.record.destination_service
    assert (found.name if found else None) == expected


def test_source_through_a_gateway_is_described_by_baggage_not_by_ip() -> None:
    headers = (
        ("x-forwarded-network", "west"),
        (
            "baggage",
            "k8s.namespace.name=remote-ns,k8s.deployment.name=remote-app,service.version=v9",
        ),
    )
    plan = plan_inbound(world(), SERVER, req("10.0.1.1:8080", headers=headers))
    assert isinstance(plan, InboundPlan)
    assert plan.record.source_workload is None
    labels = dict(traffic_labels(plan.record))
    assert labels["source_workload"] == "remote-app"
    assert labels["source_app"] == "remote-app"
    assert labels["source_workload_namespace"] == "remote-ns"
    assert labels["source_version"] == "v9"
    assert labels["source_principal"] == "spiffe://cluster.local/ns/default/sa/client"


def test_same_network_header_still_looks_the_source_up() -> None:
    plan = plan_inbound(
        world(), SERVER, req("10.0.1.1:8080", headers=(("x-forwarded-network", ""),))
    )
    assert isinstance(plan, InboundPlan)
    assert plan.record.source_workload == CLIENT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", True),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", False),
        ("garbage", False),
    ],
)
def test_traceparent_is_reused_when_well_formed(value: str, expected: bool) -> None:
    plan = plan_inbound(world(), SERVER, req("10.0.1.1:8080", headers=(("traceparent", value),)))
    assert isinstance(plan, InboundPlan)
    assert (plan.trace is not None) is expected
    if expected:
        assert isinstance(plan.trace, TraceParent)
        assert plan.trace.header == value


def test_recheck_denies_a_live_connection_after_a_policy_change() -> None:
    """Reference 1.6: existing connections are re-evaluated and closed when now denied."""
    state = world()
    plan = plan_inbound(state, SERVER, req("10.0.1.1:8080"))
    assert isinstance(plan, InboundPlan)
    assert recheck(state, plan).allowed
    change = state.apply(StateUpdate(policies=(DENY_ALL,)))
    assert change.authorization_changed
    assert not recheck(state, plan).allowed


def test_recheck_sees_a_selector_policy_newly_listed_on_the_workload() -> None:
    state = world(policy("strict", Rule(), action=Action.DENY, scope=Scope.WORKLOAD_SELECTOR))
    plan = plan_inbound(state, SERVER, req("10.0.1.1:8080"))
    assert isinstance(plan, InboundPlan)
    updated = pod(
        "server",
        "10.0.1.1",
        backs={key("server"): {80: 8080}},
        authorization_policies=("default/strict",),
    )
    change = state.apply(StateUpdate(workloads=(updated,)))
    assert change.authorization_changed
    assert not recheck(state, plan).allowed


# --------------------------------------------------------------------- plaintext (15006)

PLAINTEXT_REJECTIONS = {
    "2.6: original port 15001 is refused": ("10.0.1.1:15001", SERVER, ()),
    "2.6: original port 15006 is refused": ("10.0.1.1:15006", SERVER, ()),
    "2.6: original port 15008 is refused": ("10.0.1.1:15008", SERVER, ()),
    "local workload unknown": ("10.0.1.1:8080", None, ()),
    "destination is not this pod": ("10.0.1.2:8080", SERVER, ()),
}


@pytest.mark.parametrize(
    ("dst", "local", "extra"), PLAINTEXT_REJECTIONS.values(), ids=PLAINTEXT_REJECTIONS.keys()
)
def test_plaintext_early_rejections(
    dst: str, local: Workload | None, extra: tuple[object, ...]
) -> None:
    outcome = plan_inbound_plaintext(world(*extra), local, addr("10.0.0.1:40000"), addr(dst))
    assert isinstance(outcome, InboundRejection)
    assert outcome.response_flag is None


def test_plaintext_is_authorized_without_identity_and_denied_by_closing() -> None:
    """Reference 2.6: no source identity; a deny closes the socket (flag DENY)."""
    allow_client = policy(
        "allow-client", rule(from_principals("cluster.local/ns/default/sa/client"))
    )
    outcome = plan_inbound_plaintext(
        world(allow_client), SERVER, addr("10.0.0.1:40000"), addr("10.0.1.1:8080")
    )
    assert isinstance(outcome, InboundRejection)
    assert outcome.response_flag is ResponseFlag.DENY
    assert outcome.record is not None
    assert outcome.record.security_policy is SecurityPolicy.UNKNOWN


def test_plaintext_allowed_forwards_to_the_original_destination() -> None:
    plan = plan_inbound_plaintext(world(), SERVER, addr("10.0.0.1:40000"), addr("10.0.1.1:8080"))
    assert isinstance(plan, InboundPlan)
    assert plan.upstream == addr("10.0.1.1:8080")
    assert str(plan.source_ip) == "10.0.0.1"
    assert plan.facts.src_identity is None
    assert plan.response_headers == ()
    labels = dict(traffic_labels(plan.record))
    assert labels["connection_security_policy"] == "unknown"
    assert labels["source_workload"] == "client"
    assert labels["destination_service"] == host("server")
    assert labels["source_principal"] == "spiffe://cluster.local/ns/default/sa/client"
