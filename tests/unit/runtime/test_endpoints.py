"""Ready endpoints for kube-proxy and A records for DNS, as the EndpointSlice controller picks."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from ambientmesh.runtime.endpoints import dns_records, service_ports
from ambientmesh.runtime.kubeproxy import Endpoint


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    base = {
        "clusterIP": "10.96.0.20",
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
    }
    return {"metadata": {"name": name, "namespace": "shop"}, "spec": {**base, **spec}}


def pod(
    ip: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
    port: int = 8080,
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": f"p{ip}",
        "namespace": namespace,
        "labels": labels or {"app": "web"},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_only_ready_running_matching_pods_of_the_namespace_are_endpoints() -> None:
    pods = [
        pod("10.244.1.2"),
        pod("10.244.2.2", port=9090),  # named port resolved per pod
        pod("10.244.1.3", ready=False),
        pod("10.244.1.4", phase="Succeeded"),
        pod("10.244.1.5", namespace="other"),
        pod("10.244.1.6", labels={"app": "db"}),
        pod("10.244.1.7", deleting=True),
    ]
    (port,) = service_ports([service()], pods)
    assert port.name == "shop/web:http"
    assert port.vip == IPv4Address("10.96.0.20")
    assert port.endpoints == (
        Endpoint(ip=IPv4Address("10.244.1.2"), port=8080),
        Endpoint(ip=IPv4Address("10.244.2.2"), port=9090),
    )


def test_publish_not_ready_addresses_includes_unready_pods() -> None:
    (port,) = service_ports(
        [service(publishNotReadyAddresses=True)], [pod("10.244.1.3", ready=False)]
    )
    assert [str(e.ip) for e in port.endpoints] == ["10.244.1.3"]


def test_numeric_and_missing_target_ports_and_protocols() -> None:
    ports = [
        {"port": 53, "protocol": "UDP"},
        {"name": "web", "port": 80, "targetPort": 8081},
        {"name": "sctp", "port": 99, "protocol": "SCTP"},
    ]
    result = service_ports([service(ports=ports)], [pod("10.244.1.2")])
    assert [(p.name, p.protocol, p.endpoints[0].port) for p in result] == [
        ("shop/web:53", "UDP", 53),
        ("shop/web:web", "TCP", 8081),
    ]


def test_services_without_cluster_ip_or_selector() -> None:
    headless = service("h", clusterIP="None")
    manual = service("m", selector=None, clusterIP="10.96.0.21")
    ports = service_ports([headless, manual], [pod("10.244.1.2")])
    assert [(p.name, p.endpoints) for p in ports] == [("shop/m:http", ())]


def test_dns_records() -> None:
    records = dns_records(
        [
            service(),
            service("h", clusterIP="None"),
            service("x", type="ExternalName", clusterIP=""),
        ],
        [pod("10.244.2.2"), pod("10.244.1.2"), pod("10.244.1.3", ready=False)],
        domain="cluster.local",
    )
    assert records == {
        "web.shop.svc.cluster.local": [IPv4Address("10.96.0.20")],
        "h.shop.svc.cluster.local": [IPv4Address("10.244.1.2"), IPv4Address("10.244.2.2")],
    }
