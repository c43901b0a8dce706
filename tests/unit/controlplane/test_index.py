"""Incrementality: a change yields exactly the outputs that depend on it."""

from __future__ import annotations

from typing import Any

from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.index import AmbientIndex

from . import objects as o


def cluster(pods_per_ns: int = 20) -> AmbientIndex:
    items: list[dict[str, Any]] = []
    for ns in ("a", "b"):
        items.append(o.namespace(ns, {"istio.io/dataplane-mode": "ambient"}))
        items.append(o.service("web", ns, selector={"app": "web"}))
        items.append(o.service("db", ns, selector={"app": "db"}))
        for i in range(pods_per_ns):
            app = "web" if i % 2 else "db"
            items.append(
                o.pod(f"p{i}", ns, ip=f"10.{ord(ns)}.0.{i}", labels={"app": app}, node=f"n{i % 3}")
            )
    index = AmbientIndex(MeshConfig())
    index.apply_all((item["kind"], item) for item in items)
    return index


def uid(ns: str, name: str) -> str:
    return f"Kubernetes//Pod/{ns}/{name}"


def test_initial_load_produces_every_output() -> None:
    index = cluster()
    assert len(index.addresses) == 40 + 4


def test_pod_change_yields_only_that_workload() -> None:
    index = cluster()
    changes = index.apply(
        "Pod", o.pod("p3", "a", ip="10.97.0.3", labels={"app": "web"}, node="n0", ready=False)
    )
    assert set(changes.addresses) == {uid("a", "p3")}
    assert changes.authorizations == {}


def test_identical_update_yields_nothing() -> None:
    index = cluster()
    same = o.pod("p3", "a", ip="10.97.0.3", labels={"app": "web"}, node="n0")
    assert not index.apply("Pod", same)


def test_pod_deletion_removes_its_workload() -> None:
    index = cluster()
    changes = index.apply("Pod", None, key=("a", "p3"))
    assert changes.addresses == {uid("a", "p3"): None}
    assert uid("a", "p3") not in index.addresses


def test_service_selector_change_touches_old_and_new_pods_only() -> None:
    index = cluster()
    changes = index.apply("Service", o.service("web", "a", selector={"app": "db"}))
    web = {uid("a", f"p{i}") for i in range(1, 20, 2)}
    db = {uid("a", f"p{i}") for i in range(0, 20, 2)}
    # The Service message itself has no selector: it does not change.
    assert set(changes.addresses) == web | db


def test_service_port_change_updates_selected_pods() -> None:
    index = cluster()
    service = o.service("db", "b", selector={"app": "db"}, ports=[{"name": "pg", "port": 5432}])
    changes = index.apply("Service", service)
    assert set(changes.addresses) == {"b/db.b.svc.cluster.local"} | {
        uid("b", f"p{i}") for i in range(0, 20, 2)
    }


def test_selector_policy_touches_selected_workloads_only() -> None:
    index = cluster()
    policy = o.policy(
        "deny-db",
        "a",
        {"selector": {"matchLabels": {"app": "db"}}, "action": "DENY", "rules": [{}]},
    )
    changes = index.apply("AuthorizationPolicy", policy)
    assert set(changes.authorizations) == {"a/deny-db"}
    assert set(changes.addresses) == {uid("a", f"p{i}") for i in range(0, 20, 2)}
    assert list(index.addresses[uid("a", "p0")].workload.authorization_policies) == ["a/deny-db"]
    assert policy["metadata"]["name"] == "deny-db"
    assert changes.policy_conversions[("a", "deny-db")] is not None


def test_root_namespace_selector_policy_applies_in_every_namespace() -> None:
    index = cluster()
    policy = o.policy("mesh-web", "istio-system", {"selector": {"matchLabels": {"app": "web"}}})
    changes = index.apply("AuthorizationPolicy", policy)
    touched = set(changes.addresses)
    assert uid("a", "p1") in touched
    assert uid("b", "p1") in touched
    assert uid("a", "p0") not in touched


def test_namespace_policy_changes_no_workload() -> None:
    index = cluster()
    changes = index.apply("AuthorizationPolicy", o.policy("allow-nothing", "a"))
    assert set(changes.authorizations) == {"a/allow-nothing"}
    assert changes.addresses == {}


def test_namespace_label_change_touches_its_namespace_only() -> None:
    index = cluster()
    changes = index.apply("Namespace", o.namespace("b"))
    assert {name.split("/")[-2] for name in changes.addresses if name.startswith("Kubernetes")} == {
        "b"
    }
    assert len([n for n in changes.addresses if n.startswith("Kubernetes")]) == 20


def test_node_label_change_touches_pods_on_that_node() -> None:
    index = cluster()
    changes = index.apply("Node", o.node("n1", {"topology.kubernetes.io/zone": "z1"}))
    expected = {uid(ns, f"p{i}") for ns in ("a", "b") for i in range(20) if i % 3 == 1}
    assert set(changes.addresses) == expected


def test_waypoint_readiness_rebinds_only_its_users() -> None:
    index = cluster()
    index.apply(
        "Service",
        o.service("web", "a", selector={"app": "web"}, labels={"istio.io/use-waypoint": "wp"}),
    )
    changes = index.apply("Gateway", o.waypoint("wp", "a"))
    assert set(changes.addresses) == {"a/web.a.svc.cluster.local"}
    changes = index.apply("Gateway", o.waypoint("wp", "a", ready=False))
    assert set(changes.addresses) == {"a/web.a.svc.cluster.local"}
    assert not index.addresses["a/web.a.svc.cluster.local"].service.HasField("waypoint")
    assert index.bindings[("a", "web")].reason == "WaypointNotReady"


def test_deleting_a_service_drops_it_from_pods() -> None:
    index = cluster()
    changes = index.apply("Service", None, key=("a", "web"))
    assert changes.addresses["a/web.a.svc.cluster.local"] is None
    assert dict(index.addresses[uid("a", "p1")].workload.services) == {}


def test_unknown_kinds_change_nothing() -> None:
    index = cluster()
    assert not index.apply("ConfigMap", {"metadata": {"name": "x", "namespace": "a"}})
