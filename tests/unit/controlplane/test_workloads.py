"""Pods -> Workloads, Services -> Services: every rule of istio-ambient.md §3.2/§3.4."""

from __future__ import annotations

from typing import Any

import pytest

from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex
from ambientmesh.proto import workload_pb2 as wpb

from . import objects as o

UID = "Kubernetes//Pod/default/p"


def index_with(*items: dict[str, Any], config: MeshConfig | None = None) -> AmbientIndex:
    index = AmbientIndex(config or MeshConfig())
    index.apply_all((item["kind"], item) for item in items)
    return index


def workload(index: AmbientIndex, uid: str = UID) -> wpb.Workload:
    return index.addresses[uid].workload


AMBIENT = {"istio.io/dataplane-mode": "ambient"}
NONE = {"istio.io/dataplane-mode": "none"}


@pytest.mark.parametrize(
    ("ns_labels", "pod_kwargs", "protocol"),
    [
        (AMBIENT, {}, wpb.HBONE),
        ({}, {}, wpb.NONE),
        ({}, {"labels": AMBIENT}, wpb.HBONE),
        (AMBIENT, {"labels": NONE}, wpb.NONE),
        ({}, {"annotations": {"ambient.istio.io/redirection": "enabled"}}, wpb.HBONE),
        (AMBIENT, {"host_network": True}, wpb.NONE),
        (AMBIENT, {"annotations": {"sidecar.istio.io/status": "{}"}}, wpb.NONE),
        ({}, {"labels": {"networking.istio.io/tunnel": "http", **NONE}}, wpb.HBONE),
    ],
)
def test_enrollment_sets_the_tunnel(
    ns_labels: dict[str, str], pod_kwargs: dict[str, Any], protocol: int
) -> None:
    index = index_with(o.namespace("default", ns_labels), o.pod("p", **pod_kwargs))
    assert workload(index).tunnel_protocol == protocol


def test_native_tunnel_for_pods_that_speak_hbone() -> None:
    index = index_with(o.pod("p", labels={"networking.istio.io/tunnel": "http"}))
    assert workload(index).native_tunnel


@pytest.mark.parametrize(
    "pod_kwargs",
    [{"ip": None}, {"phase": "Succeeded"}, {"phase": "Failed"}],
)
def test_pods_without_ip_or_finished_have_no_workload(pod_kwargs: dict[str, Any]) -> None:
    index = index_with(o.pod("p", **pod_kwargs))
    assert UID not in index.addresses


@pytest.mark.parametrize(
    ("pod_kwargs", "status"),
    [
        ({}, wpb.HEALTHY),
        ({"ready": False}, wpb.UNHEALTHY),
        ({"terminating": True}, wpb.UNHEALTHY),
    ],
)
def test_status(pod_kwargs: dict[str, Any], status: int) -> None:
    assert workload(index_with(o.pod("p", **pod_kwargs))).status == status


@pytest.mark.parametrize(
    ("owners", "labels", "kind", "name"),
    [
        (
            [("ReplicaSet", "reviews-v1-5d4f8")],
            {"pod-template-hash": "5d4f8"},
            wpb.DEPLOYMENT,
            "reviews-v1",
        ),
        ([("Deployment", "reviews-v1")], {}, wpb.DEPLOYMENT, "reviews-v1"),
        ([("Job", "migrate")], {}, wpb.JOB, "migrate"),
        ([], {}, wpb.POD, "p"),
    ],
)
def test_workload_type_and_name(
    owners: list[tuple[str, str]], labels: dict[str, str], kind: int, name: str
) -> None:
    got = workload(index_with(o.pod("p", owners=owners, labels=labels)))
    assert (got.workload_type, got.workload_name) == (kind, name)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"service.istio.io/canonical-name": "c", "app": "a", "version": "v2"}, ("c", "v2")),
        ({"app.kubernetes.io/name": "k", "app.kubernetes.io/version": "1.0"}, ("k", "1.0")),
        ({"app": "a"}, ("a", "latest")),
        ({}, ("p", "latest")),
    ],
)
def test_canonical_name_and_revision(labels: dict[str, str], expected: tuple[str, str]) -> None:
    got = workload(index_with(o.pod("p", labels=labels)))
    assert (got.canonical_name, got.canonical_revision) == expected


def test_identity_node_addresses_and_uid() -> None:
    got = workload(index_with(o.pod("p", ip="10.1.2.3", sa="reviews", node="n7")))
    assert got.uid == UID
    assert (got.name, got.namespace, got.node) == ("p", "default", "n7")
    assert list(got.addresses) == [bytes([10, 1, 2, 3])]
    assert got.service_account == "reviews"
    assert got.trust_domain == ""  # the default trust domain is elided
    assert got.cluster_id == "Kubernetes"


def test_default_service_account_and_foreign_trust_domain() -> None:
    got = workload(index_with(o.pod("p"), config=MeshConfig(trust_domain="example.org")))
    assert got.service_account == "default"
    assert got.trust_domain == "example.org"


def test_locality_from_node_labels() -> None:
    node = o.node(
        "node-a",
        {
            "topology.kubernetes.io/region": "r",
            "topology.kubernetes.io/zone": "z",
            "topology.istio.io/subzone": "s",
        },
    )
    got = workload(index_with(node, o.pod("p")))
    assert (got.locality.region, got.locality.zone, got.locality.subzone) == ("r", "z", "s")


def test_host_network_pods_are_not_looked_up_by_ip() -> None:
    assert workload(index_with(o.pod("p", host_network=True))).network_mode == wpb.HOST_NETWORK


def test_services_map_resolves_named_target_ports() -> None:
    svc = o.service(
        "web",
        selector={"app": "web"},
        ports=[
            {"name": "http", "port": 80, "targetPort": "http-alt"},
            {"name": "grpc", "port": 9090, "targetPort": 19090},
            {"name": "plain", "port": 7070},
            {"name": "missing", "port": 6060, "targetPort": "nope"},
        ],
    )
    other = o.service("other", selector={"app": "other"})
    index = index_with(svc, other, o.pod("p", labels={"app": "web"}, ports={"http-alt": 8080}))
    services = workload(index).services
    assert list(services) == ["default/web.default.svc.cluster.local"]
    ports = [
        (p.service_port, p.target_port)
        for p in services["default/web.default.svc.cluster.local"].ports
    ]
    assert ports == [(80, 8080), (9090, 19090), (7070, 7070)]


def test_services_select_only_their_namespace() -> None:
    index = index_with(
        o.service("web", "other", selector={"app": "web"}), o.pod("p", labels={"app": "web"})
    )
    assert dict(workload(index).services) == {}


def test_service_fields() -> None:
    svc = o.service(
        "web",
        selector={"app": "web"},
        ports=[{"name": "http", "port": 80, "targetPort": "http", "appProtocol": "http"}],
        vip="10.96.1.1",
    )
    index = index_with(svc)
    service = index.addresses["default/web.default.svc.cluster.local"].service
    assert (service.name, service.namespace, service.hostname) == (
        "web",
        "default",
        "web.default.svc.cluster.local",
    )
    assert [a.address for a in service.addresses] == [bytes([10, 96, 1, 1])]
    # A named target port is resolved per endpoint: 0 on the Service.
    assert [(p.service_port, p.target_port, p.app_protocol) for p in service.ports] == [
        (80, 0, wpb.HTTP11)
    ]
    assert not service.HasField("load_balancing")


def test_headless_service_has_no_vip_and_external_name_is_skipped() -> None:
    index = index_with(
        o.service("headless", vip="None"), o.service("ext", vip=None, type="ExternalName")
    )
    assert (
        list(index.addresses["default/headless.default.svc.cluster.local"].service.addresses) == []
    )
    assert "default/ext.default.svc.cluster.local" not in index.addresses


@pytest.mark.parametrize(
    ("spec", "preference", "mode"),
    [
        ({"internalTrafficPolicy": "Local"}, [wpb.LoadBalancing.NODE], wpb.LoadBalancing.STRICT),
        (
            {"trafficDistribution": "PreferClose"},
            [
                wpb.LoadBalancing.NETWORK,
                wpb.LoadBalancing.REGION,
                wpb.LoadBalancing.ZONE,
                wpb.LoadBalancing.SUBZONE,
            ],
            wpb.LoadBalancing.FAILOVER,
        ),
    ],
)
def test_load_balancing(spec: dict[str, str], preference: list[int], mode: int) -> None:
    index = index_with(o.service("web", **spec))
    balancing = index.addresses["default/web.default.svc.cluster.local"].service.load_balancing
    assert list(balancing.routing_preference) == preference
    assert balancing.mode == mode


def test_ingress_use_waypoint_from_service_or_namespace() -> None:
    index = index_with(
        o.namespace("default", {"istio.io/ingress-use-waypoint": "true"}), o.service("web")
    )
    assert index.addresses["default/web.default.svc.cluster.local"].service.ingress_use_waypoint


def test_service_entry_services_and_endpoints() -> None:
    entry = o.service_entry(
        "ext",
        hosts=["api.example.com"],
        addresses=["240.0.0.1"],
        ports=[{"number": 443, "name": "https", "protocol": "TLS"}],
        endpoints=[{"address": "1.2.3.4", "ports": {"https": 8443}}],
        workloadSelector={"labels": {"app": "vm"}},
    )
    index = index_with(entry, o.pod("p", labels={"app": "vm"}))
    service = index.addresses["default/api.example.com"].service
    assert service.hostname == "api.example.com"
    assert [a.address for a in service.addresses] == [bytes([240, 0, 0, 1])]
    endpoint = index.addresses["Kubernetes/networking.istio.io/ServiceEntry/default/ext/1.2.3.4"]
    ports = endpoint.workload.services["default/api.example.com"].ports
    assert [(p.service_port, p.target_port) for p in ports] == [(443, 8443)]
    assert "default/api.example.com" in workload(index).services
