"""The routed design as operations: gateways, fail-fast routes, nothing leading out."""

from __future__ import annotations

from ipaddress import IPv4Address

from ambientmesh.linux.iproute import AddRoute, render_batch
from ambientmesh.runtime import netplan
from ambientmesh.runtime.ipam import Addressing

PLAN = Addressing()


def routes(operations: tuple[object, ...]) -> list[AddRoute]:
    return [op for op in operations if isinstance(op, AddRoute)]


def test_no_namespace_gets_a_default_route() -> None:
    everything = (
        netplan.router_operations(PLAN)
        + netplan.router_node_operations(PLAN, index=1, node_netns="am-c.n1")
        + netplan.node_operations(PLAN, index=1)
        + netplan.node_pod_operations(pod_netns="am-c.d.p", pod_ip=IPv4Address("10.244.1.2"))
        + netplan.pod_operations(PLAN, node_index=1, pod_ip=IPv4Address("10.244.1.2"))
    )
    assert all(route.destination.prefixlen > 0 for route in routes(everything))


def test_pod_routes_only_cluster_ranges_via_its_node() -> None:
    text = render_batch(
        netplan.pod_operations(PLAN, node_index=2, pod_ip=IPv4Address("10.244.2.7"))
    )
    assert text.splitlines() == [
        "link set dev lo up",
        "link set dev eth0 up",
        "address add 10.244.2.7/32 dev eth0",
        "route add 10.244.0.0/16 via 10.244.2.1 dev eth0 onlink",
        "route add 10.96.0.0/16 via 10.244.2.1 dev eth0 onlink",
    ]


def test_router_fails_fast_for_unheld_cluster_addresses_and_answers_from_a_routable_source() -> (
    None
):
    router = render_batch(netplan.router_operations(PLAN)).splitlines()
    assert "route add unreachable 10.244.0.0/16" in router
    assert "route add unreachable 10.96.0.0/16" in router
    link = render_batch(
        netplan.router_node_operations(PLAN, index=3, node_netns="am-c.n3")
    ).splitlines()
    assert link[-1].startswith("route add 10.244.3.0/24 via 10.244.3.1 dev am")
    assert link[-1].endswith(" onlink src 10.96.0.10")


def test_node_reaches_the_cluster_through_the_router_and_its_own_subnet_fails_fast() -> None:
    node = render_batch(netplan.node_operations(PLAN, index=1)).splitlines()
    assert "route add 10.244.0.0/16 via 10.96.0.10 dev eth0 onlink" in node
    assert "route add 10.96.0.0/16 via 10.96.0.10 dev eth0 onlink" in node
    assert "route add unreachable 10.244.1.0/24" in node


def test_resolv_conf_searches_like_kubernetes_cluster_first() -> None:
    text = netplan.resolv_conf(dns_ip=PLAN.dns_ip, domain="cluster.local", namespace="shop")
    assert "search shop.svc.cluster.local svc.cluster.local cluster.local\n" in text
    assert "nameserver 10.96.0.10\n" in text
    assert "options ndots:5\n" in text
    assert "search svc.cluster.local cluster.local\n" in netplan.resolv_conf(
        dns_ip=PLAN.dns_ip, domain="cluster.local", namespace=None
    )
