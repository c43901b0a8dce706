"""Protobuf discovery resources to internal types, with precise errors for the xDS NACK."""

from __future__ import annotations

import ipaddress

import pytest
from google.protobuf import empty_pb2, wrappers_pb2

from ambientmesh.proto import authorization_pb2 as apb
from ambientmesh.proto import workload_pb2 as wpb
from ambientmesh.ztunnel.authz import authorize
from ambientmesh.ztunnel.model import (
    ApplicationTunnel,
    ApplicationTunnelProtocol,
    AppProtocol,
    GatewayAddress,
    HealthPolicy,
    HealthStatus,
    IpFamilies,
    LoadBalancing,
    LoadBalancingMode,
    Locality,
    LocalityScope,
    NamespacedHostname,
    NetworkAddress,
    NetworkMode,
    Port,
    Service,
    TunnelProtocol,
    Workload,
    WorkloadType,
    parse_ip,
)
from ambientmesh.ztunnel.policy import (
    Action,
    Authorization,
    ConnectionFacts,
    Scope,
    ServiceAccountMatch,
    StringMatch,
)
from ambientmesh.ztunnel.xds_convert import (
    InvalidResource,
    address_from_proto,
    address_update,
    authorization_from_proto,
    authorization_update,
    fail_closed_authorization,
    service_from_proto,
    workload_from_proto,
)

from .builders import identity

V4 = ipaddress.ip_address("10.0.0.1").packed
V6 = ipaddress.ip_address("fd00::1").packed


def full_workload() -> wpb.Workload:
    return wpb.Workload(
        uid="Kubernetes//Pod/default/reviews-v1-abc",
        name="reviews-v1-abc",
        namespace="default",
        addresses=[V4, V6],
        network="net1",
        tunnel_protocol=wpb.HBONE,
        service_account="reviews",
        waypoint=wpb.GatewayAddress(
            hostname=wpb.NamespacedHostname(
                namespace="default", hostname="wp.default.svc.cluster.local"
            ),
            hbone_mtls_port=15008,
        ),
        node="node-a",
        canonical_name="reviews",
        canonical_revision="v1",
        workload_type=wpb.JOB,
        workload_name="reviews-v1",
        application_tunnel=wpb.ApplicationTunnel(protocol=wpb.ApplicationTunnel.PROXY, port=15088),
        services={
            "default/reviews.default.svc.cluster.local": wpb.PortList(
                ports=[wpb.Port(service_port=9080, target_port=9081, app_protocol=wpb.HTTP2)]
            )
        },
        authorization_policies=["istio-system/istio_converted_static_strict"],
        status=wpb.UNHEALTHY,
        cluster_id="Kubernetes",
        locality=wpb.Locality(region="eu", zone="eu-1", subzone="r1"),
        network_mode=wpb.HOST_NETWORK,
        capacity=wrappers_pb2.UInt32Value(value=3),
    )


def test_workload_conversion_keeps_every_field() -> None:
    converted = address_from_proto(wpb.Address(workload=full_workload()))
    assert converted == Workload(
        uid="Kubernetes//Pod/default/reviews-v1-abc",
        name="reviews-v1-abc",
        namespace="default",
        addresses=(parse_ip("10.0.0.1"), parse_ip("fd00::1")),
        network="net1",
        tunnel_protocol=TunnelProtocol.HBONE,
        service_account="reviews",
        waypoint=GatewayAddress(
            destination=NamespacedHostname(
                namespace="default", hostname="wp.default.svc.cluster.local"
            )
        ),
        node="node-a",
        canonical_name="reviews",
        canonical_revision="v1",
        workload_type=WorkloadType.JOB,
        workload_name="reviews-v1",
        application_tunnel=ApplicationTunnel(protocol=ApplicationTunnelProtocol.PROXY, port=15088),
        services={
            NamespacedHostname(namespace="default", hostname="reviews.default.svc.cluster.local"): (
                Port(service_port=9080, target_port=9081, app_protocol=AppProtocol.HTTP2),
            )
        },
        authorization_policies=("istio-system/istio_converted_static_strict",),
        status=HealthStatus.UNHEALTHY,
        cluster_id="Kubernetes",
        locality=Locality(region="eu", zone="eu-1", subzone="r1"),
        network_mode=NetworkMode.HOST_NETWORK,
        capacity=3,
    )
    assert str(converted.identity) == "spiffe://cluster.local/ns/default/sa/reviews"


def test_workload_defaults() -> None:
    """Empty trust domain is cluster.local, empty SA is default, unset capacity is 1."""
    w = workload_from_proto(wpb.Workload(uid="u", name="n", namespace="ns"))
    assert (w.trust_domain, w.service_account, w.capacity) == ("cluster.local", "default", 1)
    assert w.application_tunnel is None
    assert w.waypoint is None
    zero = workload_from_proto(
        wpb.Workload(uid="u", name="n", namespace="ns", capacity=wrappers_pb2.UInt32Value(value=0))
    )
    assert zero.capacity == 0


def _bad_workload(**fields: object) -> wpb.Workload:
    base = {"uid": "u1", "name": "n", "namespace": "ns"}
    return wpb.Workload(**(base | fields))


WORKLOAD_ERRORS = {
    "uid is required": (_bad_workload(uid=""), "uid: is required"),
    "namespace is required": (_bad_workload(namespace=""), "namespace: is required"),
    "address length": (
        _bad_workload(addresses=[b"\x01\x02\x03"]),
        "addresses[0]: an IP address is 4 or 16 bytes",
    ),
    "unknown tunnel protocol": (
        _bad_workload(tunnel_protocol=7),
        "tunnel_protocol: 7 is not a supported",
    ),
    "invalid service account": (_bad_workload(service_account="Bad SA"), "service_account"),
    "invalid trust domain": (_bad_workload(trust_domain="UPPER.case"), "trust domain"),
    "waypoint without destination": (
        _bad_workload(waypoint=wpb.GatewayAddress(hbone_mtls_port=15008)),
        "waypoint: has neither a hostname nor an address",
    ),
    "waypoint port 0": (
        _bad_workload(
            waypoint=wpb.GatewayAddress(address=wpb.NetworkAddress(address=V4), hbone_mtls_port=0)
        ),
        "waypoint.hbone_mtls_port: port 0",
    ),
    "waypoint address bytes": (
        _bad_workload(
            waypoint=wpb.GatewayAddress(
                address=wpb.NetworkAddress(address=b""), hbone_mtls_port=15008
            )
        ),
        "waypoint.address.address",
    ),
    "service key without namespace": (
        _bad_workload(services={"reviews": wpb.PortList()}),
        "services['reviews']",
    ),
    "service port 0": (
        _bad_workload(
            services={"ns/h": wpb.PortList(ports=[wpb.Port(service_port=0, target_port=1)])}
        ),
        "services['ns/h'].ports[0].service_port: port 0",
    ),
    "target port too big": (
        _bad_workload(
            services={"ns/h": wpb.PortList(ports=[wpb.Port(service_port=80, target_port=70000)])}
        ),
        "services['ns/h'].ports[0].target_port: port 70000",
    ),
    "application tunnel port": (
        _bad_workload(application_tunnel=wpb.ApplicationTunnel(port=99999)),
        "application_tunnel.port",
    ),
    "empty policy name": (_bad_workload(authorization_policies=[""]), "authorization_policies[0]"),
}


@pytest.mark.parametrize(
    ("message", "problem"), WORKLOAD_ERRORS.values(), ids=WORKLOAD_ERRORS.keys()
)
def test_workload_errors_name_the_field(message: wpb.Workload, problem: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        workload_from_proto(message)
    assert problem in raised.value.message
    assert raised.value.message.startswith("Workload ")


def test_address_without_a_kind() -> None:
    with pytest.raises(InvalidResource, match="neither a workload nor a service"):
        address_from_proto(wpb.Address())


def test_service_conversion() -> None:
    message = wpb.Service(
        name="reviews",
        namespace="default",
        hostname="reviews.default.svc.cluster.local",
        addresses=[
            wpb.NetworkAddress(network="", address=V4),
            wpb.NetworkAddress(network="n2", address=V6),
        ],
        ports=[wpb.Port(service_port=80, target_port=0)],
        subject_alt_names=["spiffe://cluster.local/ns/default/sa/reviews", "reviews.example.com"],
        waypoint=wpb.GatewayAddress(address=wpb.NetworkAddress(address=V4), hbone_mtls_port=15008),
        load_balancing=wpb.LoadBalancing(
            routing_preference=[wpb.LoadBalancing.NETWORK, wpb.LoadBalancing.ZONE],
            mode=wpb.LoadBalancing.UNSPECIFIED_MODE,
            health_policy=wpb.LoadBalancing.ALLOW_ALL,
        ),
        ip_families=wpb.DUAL,
        canonical=True,
        ingress_use_waypoint=True,
    )
    converted = address_from_proto(wpb.Address(service=message))
    assert converted == Service(
        name="reviews",
        namespace="default",
        hostname="reviews.default.svc.cluster.local",
        addresses=(
            NetworkAddress(network="", address=parse_ip("10.0.0.1")),
            NetworkAddress(network="n2", address=parse_ip("fd00::1")),
        ),
        ports=(Port(service_port=80, target_port=0),),
        # A SAN that is not a workload identity is ignored, as ztunnel does.
        subject_alt_names=(identity("reviews"),),
        waypoint=GatewayAddress(
            destination=NetworkAddress(network="", address=parse_ip("10.0.0.1"))
        ),
        load_balancing=LoadBalancing(
            routing_preference=(LocalityScope.NETWORK, LocalityScope.ZONE),
            mode=LoadBalancingMode.STANDARD,
            health_policy=HealthPolicy.ALLOW_ALL,
        ),
        ip_families=IpFamilies.DUAL,
        canonical=True,
        ingress_use_waypoint=True,
    )


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (wpb.Service(name="s", namespace="ns"), "hostname: is required"),
        (
            wpb.Service(
                name="s",
                namespace="ns",
                hostname="h",
                load_balancing=wpb.LoadBalancing(
                    routing_preference=[wpb.LoadBalancing.UNSPECIFIED_SCOPE]
                ),
            ),
            "load_balancing.routing_preference[0]",
        ),
        (wpb.Service(name="s", namespace="ns", hostname="h", ip_families=9), "ip_families"),
        (
            wpb.Service(name="s", namespace="ns", hostname="h", addresses=[wpb.NetworkAddress()]),
            "addresses[0].address",
        ),
    ],
    ids=["hostname required", "unspecified locality scope", "unknown ip family", "empty VIP"],
)
def test_service_errors(message: wpb.Service, problem: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        service_from_proto(message)
    assert problem in raised.value.message
    assert raised.value.message.startswith("Service ns/")


def sm(**kind: object) -> apb.StringMatch:
    return apb.StringMatch(**kind)


def full_policy() -> apb.Authorization:
    return apb.Authorization(
        name="allow-sleep",
        namespace="foo",
        scope=apb.WORKLOAD_SELECTOR,
        action=apb.ALLOW,
        dry_run=True,
        rules=[
            apb.Rule(
                clauses=[
                    apb.Clause(
                        matches=[
                            apb.Match(
                                principals=[
                                    sm(exact="cluster.local/ns/foo/sa/sleep"),
                                    sm(presence=empty_pb2.Empty()),
                                ],
                                not_namespaces=[sm(prefix="kube-"), sm(suffix="-test")],
                                source_ips=[apb.Address(address=V4, length=24)],
                                not_destination_ips=[apb.Address(address=V6, length=128)],
                                destination_ports=[8080],
                                not_destination_ports=[9090],
                                service_accounts=[
                                    apb.ServiceAccountMatch(namespace="foo", serviceAccount="sleep")
                                ],
                            )
                        ]
                    )
                ]
            )
        ],
    )


def test_authorization_conversion() -> None:
    converted = authorization_from_proto(full_policy())
    assert converted.key == "foo/allow-sleep"
    assert (converted.scope, converted.action, converted.dry_run) == (
        Scope.WORKLOAD_SELECTOR,
        Action.ALLOW,
        True,
    )
    (match,) = converted.rules[0].clauses[0].matches
    assert match.principals == (
        StringMatch.exact("cluster.local/ns/foo/sa/sleep"),
        StringMatch.presence(),
    )
    assert match.not_namespaces == (StringMatch.prefix("kube-"), StringMatch.suffix("-test"))
    assert match.source_ips == (ipaddress.ip_network("10.0.0.0/24"),)  # host bits ignored
    assert match.not_destination_ips == (ipaddress.ip_network("fd00::1/128"),)
    assert match.destination_ports == {8080}
    assert match.not_destination_ports == {9090}
    assert match.service_accounts == (
        ServiceAccountMatch(namespace="foo", service_account="sleep"),
    )


def _policy_with(match: apb.Match, **fields: object) -> apb.Authorization:
    base: dict[str, object] = {
        "name": "p",
        "namespace": "ns",
        "rules": [apb.Rule(clauses=[apb.Clause(matches=[match])])],
    }
    return apb.Authorization(**(base | fields))


POLICY_ERRORS = {
    "a string match that sets nothing (ztunnel would drop it and widen the match)": (
        _policy_with(apb.Match(principals=[apb.StringMatch()])),
        "rules[0].clauses[0].matches[0].principals[0]: sets none of",
    ),
    "a CIDR with a bad address": (
        _policy_with(apb.Match(source_ips=[apb.Address(address=b"\x01", length=8)])),
        "rules[0].clauses[0].matches[0].source_ips[0].address",
    ),
    "a prefix longer than the address": (
        _policy_with(apb.Match(destination_ips=[apb.Address(address=V4, length=33)])),
        "destination_ips[0].length: 33 exceeds 32",
    ),
    "port 0": (_policy_with(apb.Match(destination_ports=[0])), "destination_ports[0]: port 0"),
    "port beyond 65535 (ztunnel would truncate it)": (
        _policy_with(apb.Match(not_destination_ports=[65536 + 80])),
        "not_destination_ports[0]: port 65616",
    ),
    "service account without a namespace": (
        _policy_with(apb.Match(service_accounts=[apb.ServiceAccountMatch(serviceAccount="sa")])),
        "service_accounts[0].namespace: is required",
    ),
    "unknown scope": (_policy_with(apb.Match(), scope=5), "scope: 5 is not a supported Scope"),
    "unknown action": (_policy_with(apb.Match(), action=3), "action: 3 is not a supported Action"),
    "name required": (_policy_with(apb.Match(), name=""), "name: is required"),
}


@pytest.mark.parametrize(("message", "problem"), POLICY_ERRORS.values(), ids=POLICY_ERRORS.keys())
def test_authorization_errors(message: apb.Authorization, problem: str) -> None:
    with pytest.raises(InvalidResource) as raised:
        authorization_from_proto(message)
    assert problem in raised.value.message
    assert raised.value.message.startswith("Authorization ns/")


FACTS = ConnectionFacts(
    src_ip=parse_ip("10.0.0.1"),
    src_identity=identity("sleep"),
    dst_ip=parse_ip("10.0.1.1"),
    dst_port=80,
)


@pytest.mark.parametrize(
    ("message", "scope"),
    [
        (
            _policy_with(apb.Match(principals=[apb.StringMatch()]), scope=apb.WORKLOAD_SELECTOR),
            Scope.WORKLOAD_SELECTOR,
        ),
        (_policy_with(apb.Match(), scope=9), Scope.NAMESPACE),
    ],
    ids=["keeps a readable scope", "unreadable scope covers the namespace"],
)
def test_an_unparseable_policy_denies(message: apb.Authorization, scope: Scope) -> None:
    """Security defaults are closed: the stand-in denies every connection it could cover."""
    with pytest.raises(InvalidResource) as raised:
        authorization_from_proto(message)
    stand_in = fail_closed_authorization("ns/p", message, raised.value)
    assert isinstance(stand_in, Authorization)
    assert (stand_in.key, stand_in.scope, stand_in.action) == ("ns/p", scope, Action.DENY)
    decision = authorize((stand_in,), FACTS)
    assert not decision.allowed
    assert "could not be parsed" in decision.reason


def test_an_unparseable_dry_run_policy_stays_dry_run() -> None:
    message = _policy_with(apb.Match(principals=[apb.StringMatch()]), dry_run=True)
    with pytest.raises(InvalidResource) as raised:
        authorization_from_proto(message)
    stand_in = fail_closed_authorization("ns/p", message, raised.value)
    decision = authorize((stand_in,), FACTS)
    assert decision.allowed
    assert decision.dry_run_would_deny


def test_address_update_applies_good_resources_and_reports_bad_ones() -> None:
    good = wpb.Address(workload=wpb.Workload(uid="u1", name="a", namespace="ns"))
    bad = wpb.Address(
        workload=wpb.Workload(uid="u2", name="b", namespace="ns", addresses=[b"\x00"])
    )
    svc = wpb.Address(
        service=wpb.Service(name="s", namespace="ns", hostname="s.ns.svc.cluster.local")
    )
    misnamed = wpb.Address(workload=wpb.Workload(uid="u3", name="c", namespace="ns"))
    result = address_update(
        [("u1", good), ("u2", bad), ("ns/s.ns.svc.cluster.local", svc), ("wrong", misnamed)],
        removed=["u9"],
    )
    assert [w.uid for w in result.update.workloads] == ["u1"]
    assert [s.name for s in result.update.services] == ["s"]
    assert result.update.removed_addresses == ("u9",)
    assert [e.resource for e in result.errors] == ["Workload u2", "wrong"]
    assert "resource name should be 'u3'" in result.errors[1].message


def test_authorization_update_replaces_bad_policies_with_deny_stand_ins() -> None:
    good = _policy_with(apb.Match(destination_ports=[80]))
    bad = _policy_with(apb.Match(principals=[apb.StringMatch()]), name="q")
    result = authorization_update([("ns/p", good), ("ns/q", bad)], removed=["ns/old"])
    assert [p.key for p in result.update.policies] == ["ns/p", "ns/q"]
    stand_in = result.update.policies[1]
    assert stand_in.action is Action.DENY
    assert stand_in.conversion_error is not None
    assert result.update.removed_policies == ("ns/old",)
    assert len(result.errors) == 1
