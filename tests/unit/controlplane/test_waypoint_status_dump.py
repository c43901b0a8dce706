"""Waypoint rendering, status conditions, config dump and its tables."""

from __future__ import annotations

from datetime import UTC, datetime

from ambientmesh.cli.ztunnel_config import render as render_table
from ambientmesh.controlplane import configdump
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex
from ambientmesh.controlplane.status import conditions_with, gateway_status
from ambientmesh.controlplane.waypoint_objects import WaypointSettings, render

from . import objects as o

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_waypoint_renders_owned_service_account_deployment_and_service() -> None:
    gateway = o.waypoint("wp", "shop")
    gateway["metadata"]["uid"] = "u-1"
    account, deployment, service = render(gateway, WaypointSettings())
    for obj in (account, deployment, service):
        assert obj["metadata"]["name"] == "wp"
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "u-1"
        assert obj["metadata"]["labels"]["gateway.networking.k8s.io/gateway-name"] == "wp"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["istio.io/dataplane-mode"] == "none"
    assert [p["port"] for p in service["spec"]["ports"]] == [15008, 15021]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == [
        "--gateway",
        "shop/wp",
    ]


def test_waypoint_pods_are_told_where_the_control_plane_is() -> None:
    settings = WaypointSettings(control_plane_address="unix:/run/ambientmesh/c/xds.sock")
    _, deployment, _ = render(o.waypoint("wp", "shop"), settings)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "CONTROL_PLANE_ADDRESS", "value": "unix:/run/ambientmesh/c/xds.sock"}
    ]


def test_gateway_is_programmed_with_an_address_only_when_ready() -> None:
    gateway = o.waypoint("wp", "shop", ready=False)
    status = gateway_status(gateway, ready=False, hostname="wp.shop.svc.cluster.local", now=NOW)
    assert status["addresses"] == []
    programmed = next(c for c in status["conditions"] if c["type"] == "Programmed")
    assert programmed["status"] == "False"
    status = gateway_status(gateway, ready=True, hostname="wp.shop.svc.cluster.local", now=NOW)
    assert status["addresses"] == [{"type": "Hostname", "value": "wp.shop.svc.cluster.local"}]


def test_condition_transition_time_moves_only_with_status() -> None:
    first = conditions_with(
        [], {"type": "X", "status": "True", "reason": "A", "message": ""}, now=NOW
    )
    later = datetime(2026, 1, 2, tzinfo=UTC)
    same = conditions_with(
        first, {"type": "X", "status": "True", "reason": "B", "message": ""}, now=later
    )
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"]
    flipped = conditions_with(
        same, {"type": "X", "status": "False", "reason": "C", "message": ""}, now=later
    )
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_config_dump_and_tables() -> None:
    index = AmbientIndex(MeshConfig())
    items = [
        o.namespace("default", {"istio.io/dataplane-mode": "ambient"}),
        o.waypoint("wp"),
        o.service("web", selector={"app": "web"}, labels={"istio.io/use-waypoint": "wp"}),
        o.pod("p", labels={"app": "web"}, ip="10.0.0.9"),
        o.policy("deny", spec={"action": "DENY", "rules": [{}]}),
    ]
    index.apply_all((item["kind"], item) for item in items)
    dump = configdump.dump(index.addresses.values(), index.authorizations.values())
    assert dump["workloads"][0]["workloadIps"] == ["10.0.0.9"]
    assert dump["services"][0]["waypoint"] == {
        "destination": "default/wp.default.svc.cluster.local:15008"
    }
    assert list(dump["services"][0]["endpoints"]) == ["Kubernetes//Pod/default/p"]
    workloads = render_table(dump, "workloads").splitlines()
    assert workloads[0].split() == [
        "NAMESPACE",
        "POD",
        "NAME",
        "ADDRESS",
        "NODE",
        "WAYPOINT",
        "PROTOCOL",
    ]
    assert workloads[1].split() == ["default", "p", "10.0.0.9", "node-a", "None", "HBONE"]
    services = render_table(dump, "services").splitlines()
    assert services[1].split() == ["default", "web", "10.96.0.10", "wp", "1/1"]
    policies = render_table(dump, "policies").splitlines()
    assert policies[1].split() == ["default", "deny", "Deny", "Namespace", "default"]
    assert render_table(dump, "workloads", node="elsewhere").count("\n") == 0
