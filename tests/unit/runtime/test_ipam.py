"""Address plan and pools: node subnets, reserved addresses, rolling allocation."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from ambientmesh.errors import AlreadyExists, InvalidInput, Unavailable
from ambientmesh.runtime.ipam import Addressing, AddressPool, pod_pool, service_pool


def test_default_plan_matches_kubernetes_conventions() -> None:
    plan = Addressing()
    assert plan.node_subnet(3) == IPv4Network("10.244.3.0/24")
    assert plan.node_ip(3) == IPv4Address("10.244.3.1")
    assert plan.dns_ip == plan.router_ip == IPv4Address("10.96.0.10")
    assert plan.api_server_ip == IPv4Address("10.96.0.1")
    assert plan.max_nodes == 256


def test_plan_is_configurable_and_checked() -> None:
    plan = Addressing.parse(
        pod_cidr="172.20.0.0/20", node_prefix=26, service_cidr="172.21.0.0/24", dns_ip="172.21.0.53"
    )
    assert plan.node_subnet(1) == IPv4Network("172.20.0.64/26")
    assert plan.max_nodes == 64
    with pytest.raises(InvalidInput, match="overlaps"):
        Addressing.parse(pod_cidr="10.0.0.0/8", service_cidr="10.96.0.0/16")
    with pytest.raises(InvalidInput, match="DNS address"):
        Addressing.parse(dns_ip="10.97.0.10")
    with pytest.raises(InvalidInput, match="pod CIDR"):
        Addressing.parse(pod_cidr="10.244.0.1/16")
    with pytest.raises(InvalidInput, match="only IPv4"):
        Addressing.parse(service_cidr="fd00::/108")
    with pytest.raises(InvalidInput, match="node index"):
        Addressing().node_subnet(256)


def test_pod_pool_skips_the_node_address_and_rolls_forward() -> None:
    pool = pod_pool(Addressing(), 1)
    first = pool.allocate("default/a")
    second = pool.allocate("default/b")
    assert (first, second) == (IPv4Address("10.244.1.2"), IPv4Address("10.244.1.3"))
    assert pool.allocate("default/a") == first  # idempotent per owner
    pool.release("default/a")
    assert pool.allocate("default/c") == IPv4Address("10.244.1.4")  # not the one just freed


def test_pool_wraps_around_and_reports_exhaustion() -> None:
    pool = AddressPool(IPv4Network("192.0.2.0/29"))  # hosts .1 - .6
    held = [pool.allocate(f"p{i}") for i in range(6)]
    assert held[-1] == IPv4Address("192.0.2.6")
    with pytest.raises(Unavailable, match="no free address"):
        pool.allocate("one-more")
    pool.release("p2")
    assert pool.allocate("again") == IPv4Address("192.0.2.3")


def test_service_pool_keeps_api_and_dns_addresses_and_honours_claims() -> None:
    pool = service_pool(Addressing())
    assert pool.allocate("default/a") == IPv4Address("10.96.0.2")
    with pytest.raises(InvalidInput, match="reserved"):
        pool.claim("kube-system/dns", IPv4Address("10.96.0.10"))
    assert pool.claim("default/b", IPv4Address("10.96.0.50")) == IPv4Address("10.96.0.50")
    with pytest.raises(AlreadyExists, match="default/b"):
        pool.claim("default/c", IPv4Address("10.96.0.50"))
    with pytest.raises(InvalidInput, match="not a host address"):
        pool.claim("default/d", IPv4Address("10.97.0.1"))
    assert pool.allocated == {
        "default/a": IPv4Address("10.96.0.2"),
        "default/b": IPv4Address("10.96.0.50"),
    }
