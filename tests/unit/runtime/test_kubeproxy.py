"""Rendering the kube-proxy table: a pure function from Service facts to one nft definition."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.kubeproxy import TABLE, Endpoint, ServicePort, render

NODE = IPv4Address("10.244.1.1")


def port(
    vip: str, number: int, *endpoints: str, protocol: str = "TCP", name: str = "ns/svc:p"
) -> ServicePort:
    eps = tuple(
        Endpoint(ip=IPv4Address(ep.split(":")[0]), port=int(ep.split(":")[1])) for ep in endpoints
    )
    return ServicePort(
        name=name, vip=IPv4Address(vip), port=number, protocol=protocol, endpoints=eps
    )  # type: ignore[arg-type]


def test_ready_endpoints_are_picked_at_random_per_connection() -> None:
    text = render([port("10.96.0.20", 80, "10.244.1.2:8080", "10.244.2.2:8080")], node_ip=NODE)
    assert text.startswith(f"table ip {TABLE} {{\n")
    assert "10.96.0.20 . tcp . 80 : goto svc-" in text
    assert "numgen random mod 2 vmap { 0 : goto ep-" in text
    assert "meta l4proto tcp dnat ip to 10.244.1.2:8080" in text
    assert "meta l4proto tcp dnat ip to 10.244.2.2:8080" in text


def test_traffic_from_pods_and_from_the_node_is_translated() -> None:
    text = render([port("10.96.0.20", 80, "10.244.1.2:8080")], node_ip=NODE)
    assert "type nat hook prerouting priority dstnat" in text
    assert "type nat hook output priority -100" in text
    assert text.count("ip daddr . meta l4proto . th dport vmap @service-ips") == 2


def test_hairpin_traffic_is_marked_and_masqueraded_to_the_node_like_kube_proxy() -> None:
    text = render([port("10.96.0.20", 80, "10.244.1.2:8080")], node_ip=NODE)
    assert "ip saddr 10.244.1.2 meta mark set meta mark | 0x4000" in text
    assert "meta mark & 0x4000 == 0x4000 snat ip to 10.244.1.1" in text


def test_a_port_without_endpoints_is_rejected_not_dropped() -> None:
    text = render([port("10.96.0.21", 80)], node_ip=NODE)
    assert "10.96.0.21 . tcp . 80," in text
    assert "goto svc-" not in text
    assert "meta l4proto tcp reject with tcp reset" in text
    assert "type filter hook forward" in text
    assert "type filter hook output" in text


def test_udp_and_single_endpoints_render_simply() -> None:
    text = render([port("10.96.0.22", 53, "10.244.1.2:53", protocol="UDP")], node_ip=NODE)
    assert "10.96.0.22 . udp . 53 : goto svc-" in text
    assert "numgen" not in text
    assert "meta l4proto udp dnat ip to 10.244.1.2:53" in text


def test_rendering_is_deterministic_whatever_the_input_order() -> None:
    a = port("10.96.0.20", 80, "10.244.1.2:8080", "10.244.2.2:8080", name="ns/a:http")
    b = port("10.96.0.30", 443, "10.244.2.9:8443", name="ns/b:https")
    shuffled = port(
        "10.96.0.20", 80, "10.244.2.2:8080", "10.244.1.2:8080", "10.244.1.2:8080", name="ns/a:http"
    )
    assert render([a, b], node_ip=NODE) == render([b, shuffled], node_ip=NODE)


def test_empty_table_has_no_element_lists() -> None:
    assert "elements" not in render([], node_ip=NODE)


def test_bad_facts_are_refused_with_the_service_named() -> None:
    with pytest.raises(InvalidInput, match=r"both claim 10\.96\.0\.20:80/TCP"):
        render(
            [port("10.96.0.20", 80, name="ns/a:x"), port("10.96.0.20", 80, name="ns/b:y")],
            node_ip=NODE,
        )
    with pytest.raises(InvalidInput, match="port 0"):
        render([port("10.96.0.20", 0)], node_ip=NODE)
    with pytest.raises(InvalidInput, match="ns/a:x endpoint"):
        render([port("10.96.0.20", 80, "10.244.1.2:70000", name="ns/a:x")], node_ip=NODE)
    with pytest.raises(InvalidInput, match="SCTP"):
        render([port("10.96.0.20", 80, protocol="SCTP")], node_ip=NODE)
    with pytest.raises(InvalidInput, match="nft comments"):
        render([port("10.96.0.20", 80, name='x" ; flush ruleset')], node_ip=NODE)
