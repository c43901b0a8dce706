"""PeerAuthentication conversion (istio-ambient.md §4.5; §7 scenarios 14-17)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex

from . import objects as o

STATIC = "istio-system/istio_converted_static_strict"
POD = "Kubernetes//Pod/app/p"
APP = {"app": "server"}


def build(*items: dict[str, Any]) -> AmbientIndex:
    index = AmbientIndex(MeshConfig())
    index.apply_all((item["kind"], item) for item in items)
    return index


def server() -> dict[str, Any]:
    return o.pod("p", "app", labels={**APP, "istio.io/dataplane-mode": "ambient"})


def listed(index: AmbientIndex) -> list[str]:
    return list(index.addresses[POD].workload.authorization_policies)


def as_json(index: AmbientIndex, name: str) -> dict[str, Any]:
    return json_format.MessageToDict(index.authorizations[name])


def test_no_peer_authentication_no_static_policy() -> None:
    index = build(server())
    assert STATIC not in index.authorizations
    assert listed(index) == []


def test_scenario_14_mesh_permissive_publishes_static_but_lists_nothing() -> None:
    index = build(o.peer_auth("default", mode="PERMISSIVE"), server())
    assert as_json(index, STATIC) == {
        "name": "istio_converted_static_strict",
        "namespace": "istio-system",
        "scope": "WORKLOAD_SELECTOR",
        "action": "DENY",
        "rules": [{"clauses": [{"matches": [{"notPrincipals": [{"presence": {}}]}]}]}],
    }
    assert listed(index) == []


def test_scenario_15_mesh_strict_lists_the_static_policy() -> None:
    index = build(o.peer_auth("default", mode="STRICT"), server())
    assert listed(index) == [STATIC]


def test_scenario_16_workload_strict_with_permissive_ports() -> None:
    pa = o.peer_auth(
        "server",
        "app",
        mode="STRICT",
        selector=APP,
        ports={18080: "PERMISSIVE", 19090: "PERMISSIVE"},
    )
    index = build(pa, server())
    name = "app/converted_peer_authentication_server"
    assert listed(index) == [name]
    assert as_json(index, name)["rules"] == [
        {
            "clauses": [
                {
                    "matches": [
                        {"notPrincipals": [{"presence": {}}], "notDestinationPorts": [18080, 19090]}
                    ]
                }
            ]
        }
    ]
    assert as_json(index, name)["action"] == "DENY"


def test_scenario_17_mesh_permissive_with_workload_strict_port() -> None:
    index = build(
        o.peer_auth("default", mode="PERMISSIVE"),
        o.peer_auth("server", "app", selector=APP, ports={8080: "STRICT"}),
        server(),
    )
    name = "app/converted_peer_authentication_server"
    assert listed(index) == [name]
    match = as_json(index, name)["rules"][0]["clauses"][0]["matches"][0]
    assert match == {"notPrincipals": [{"presence": {}}], "destinationPorts": [8080]}


def test_precedence_workload_over_namespace_over_mesh() -> None:
    index = build(
        o.peer_auth("default", mode="STRICT"),
        o.peer_auth("ns", "app", mode="PERMISSIVE"),
        server(),
    )
    assert listed(index) == []
    index.apply("PeerAuthentication", o.peer_auth("w", "app", mode="STRICT", selector=APP))
    assert listed(index) == [STATIC]


def test_unset_inherits_and_disable_is_ignored() -> None:
    index = build(
        o.peer_auth("default", mode="STRICT"),
        o.peer_auth("ns", "app", mode="UNSET"),
        server(),
    )
    assert listed(index) == [STATIC]
    index.apply("PeerAuthentication", o.peer_auth("ns", "app", mode="DISABLE"))
    assert listed(index) == []


def test_oldest_wins_at_one_level() -> None:
    index = build(
        o.peer_auth("newer", "app", mode="STRICT", created="2026-02-01T00:00:00Z"),
        o.peer_auth("older", "app", mode="PERMISSIVE", created="2026-01-01T00:00:00Z"),
        server(),
    )
    assert listed(index) == []


def test_selector_policies_in_the_root_namespace_are_ignored() -> None:
    index = build(
        o.peer_auth("root-sel", mode="STRICT", selector=APP),
        o.pod("p", "istio-system", labels=APP),
        server(),
    )
    assert listed(index) == []
    assert (
        list(index.addresses["Kubernetes//Pod/istio-system/p"].workload.authorization_policies)
        == []
    )


def test_removing_the_last_peer_authentication_withdraws_the_static_policy() -> None:
    index = build(o.peer_auth("default", mode="STRICT"), server())
    changes = index.apply("PeerAuthentication", None, key=("istio-system", "default"))
    assert changes.authorizations == {STATIC: None}
    assert listed(index) == []
