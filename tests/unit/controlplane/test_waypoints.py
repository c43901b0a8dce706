"""Waypoint binding for pods and services (istio-ambient.md §3.4 and §7 scenarios 4, 7, 11)."""

from __future__ import annotations

from typing import Any

import pytest

from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex
from ambientmesh.proto import workload_pb2 as wpb

from . import objects as o

POD = "Kubernetes//Pod/default/p"
SVC = "default/web.default.svc.cluster.local"
USE = "istio.io/use-waypoint"


def build(*items: dict[str, Any]) -> AmbientIndex:
    index = AmbientIndex(MeshConfig())
    index.apply_all((item["kind"], item) for item in items)
    return index


def pod_waypoint(index: AmbientIndex) -> str | None:
    workload = index.addresses[POD].workload
    return workload.waypoint.hostname.hostname if workload.HasField("waypoint") else None


def service_waypoint(index: AmbientIndex) -> str | None:
    service = index.addresses[SVC].service
    return service.waypoint.hostname.hostname if service.HasField("waypoint") else None


WP = "wp.default.svc.cluster.local"


@pytest.mark.parametrize(
    ("ns_labels", "pod_labels", "traffic", "expected"),
    [
        # The pod's own label binds it, given a waypoint that serves workloads.
        ({}, {USE: "wp"}, "workload", WP),
        ({}, {USE: "wp"}, "all", WP),
        # A pod label naming a service-only waypoint does not bind (reported as an error).
        ({}, {USE: "wp"}, "service", None),
        ({}, {USE: "wp"}, None, None),  # waypoint-for defaults to service
        # Namespace label, inherited by pods when the waypoint serves workloads.
        ({USE: "wp"}, {}, "workload", WP),
        ({USE: "wp"}, {}, "service", None),
        # The object's label wins over its namespace's; `none` opts out.
        ({USE: "wp"}, {USE: "none"}, "all", None),
        ({USE: "none"}, {USE: "wp"}, "all", WP),
        ({}, {}, "all", None),
    ],
)
def test_pod_binding(
    ns_labels: dict[str, str], pod_labels: dict[str, str], traffic: str | None, expected: str | None
) -> None:
    index = build(
        o.namespace("default", ns_labels),
        o.waypoint("wp", traffic=traffic),
        o.pod("p", labels=pod_labels),
    )
    assert pod_waypoint(index) == expected


@pytest.mark.parametrize(
    ("ns_labels", "svc_labels", "traffic", "expected"),
    [
        ({}, {USE: "wp"}, None, WP),
        ({}, {USE: "wp"}, "service", WP),
        ({}, {USE: "wp"}, "all", WP),
        ({}, {USE: "wp"}, "workload", None),
        ({USE: "wp"}, {}, "service", WP),
        ({USE: "wp"}, {USE: "none"}, "service", None),
        ({}, {USE: "wp"}, "none", None),
    ],
)
def test_service_binding(
    ns_labels: dict[str, str], svc_labels: dict[str, str], traffic: str | None, expected: str | None
) -> None:
    index = build(
        o.namespace("default", ns_labels),
        o.waypoint("wp", traffic=traffic),
        o.service("web", labels=svc_labels),
    )
    assert service_waypoint(index) == expected


def test_scenario_4_workload_waypoint_is_not_used_for_the_service() -> None:
    """Reference §7 #4: a workload-only waypoint binds pods, never their Service."""
    ns = o.namespace("default", {USE: "wp"})
    index = build(
        ns,
        o.waypoint("wp", traffic="workload"),
        o.service("web", selector={"app": "a"}),
        o.pod("p", labels={"app": "a"}),
    )
    assert pod_waypoint(index) == WP
    assert service_waypoint(index) is None


def test_scenario_7_service_waypoint_is_not_used_for_pod_ip_traffic() -> None:
    """Reference §7 #7: a service waypoint binds the Service; the pods get none."""
    ns = o.namespace("default", {USE: "wp"})
    index = build(
        ns,
        o.waypoint("wp", traffic="service"),
        o.service("web", selector={"app": "a"}),
        o.pod("p", labels={"app": "a"}),
    )
    assert service_waypoint(index) == WP
    assert pod_waypoint(index) is None


def test_scenario_11_bogus_waypoint_fails_open_and_is_reported() -> None:
    """Reference §7 #11: `use-waypoint=bogus-waypoint` -> no waypoint, traffic stays L4."""
    index = build(o.service("web", labels={USE: "bogus-waypoint"}))
    assert service_waypoint(index) is None
    binding = index.bindings[("default", "web")]
    assert binding.reason == "WaypointNotFound"
    assert "bogus-waypoint" in binding.message


def test_waypoint_not_ready_fails_open_until_it_has_an_address() -> None:
    index = build(o.waypoint("wp", ready=False), o.service("web", labels={USE: "wp"}))
    assert service_waypoint(index) is None
    assert index.bindings[("default", "web")].reason == "WaypointNotReady"
    changes = index.apply("Gateway", o.waypoint("wp"))
    assert SVC in changes.addresses
    assert service_waypoint(index) == WP
    assert changes.service_bindings[("default", "web")] is not None
    assert index.bindings[("default", "web")].reason == "WaypointAccepted"


def test_gateway_of_another_class_is_not_a_waypoint() -> None:
    index = build(o.waypoint("wp", class_name="istio"), o.service("web", labels={USE: "wp"}))
    assert service_waypoint(index) is None


@pytest.mark.parametrize(
    ("routes_from", "expected"), [("Same", None), ("All", "wp.infra.svc.cluster.local")]
)
def test_cross_namespace_needs_allowed_routes(routes_from: str, expected: str | None) -> None:
    labels = {USE: "wp", "istio.io/use-waypoint-namespace": "infra"}
    index = build(
        o.waypoint("wp", "infra", routes_from=routes_from), o.service("web", labels=labels)
    )
    assert service_waypoint(index) == expected
    if expected is None:
        assert index.bindings[("default", "web")].reason == "AttachmentDenied"


def test_older_model_service_account_waypoint_wins_over_namespace_waypoint() -> None:
    """A waypoint annotated istio.io/for-service-account serves that account's pods and takes
    precedence over the namespace-wide waypoint (Istio <= 1.21 semantics)."""
    index = build(
        o.namespace("default", {USE: "ns-wp"}),
        o.waypoint("ns-wp", traffic="all"),
        o.waypoint("sa-wp", annotations={"istio.io/for-service-account": "reviews"}),
        o.pod("p", sa="reviews"),
        o.pod("q", sa="other", ip="10.0.0.2"),
    )
    assert pod_waypoint(index) == "sa-wp.default.svc.cluster.local"
    other = index.addresses["Kubernetes//Pod/default/q"].workload
    assert other.waypoint.hostname.hostname == "ns-wp.default.svc.cluster.local"


def test_waypoint_pods_and_services_never_get_a_waypoint() -> None:
    managed = {
        "gateway.networking.k8s.io/gateway-name": "wp",
        "gateway.istio.io/managed": "istio.io-mesh-controller",
    }
    index = build(
        o.namespace("default", {USE: "wp"}),
        o.waypoint("wp", traffic="all"),
        o.pod("p", labels=managed),
    )
    assert pod_waypoint(index) is None


def test_gateway_address_prefers_the_hostname_and_uses_port_15008() -> None:
    index = build(o.waypoint("wp"), o.service("web", labels={USE: "wp"}))
    waypoint = index.addresses[SVC].service.waypoint
    assert waypoint.hbone_mtls_port == 15008
    assert waypoint.hostname == wpb.NamespacedHostname(namespace="default", hostname=WP)
