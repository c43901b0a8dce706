"""The closing report of `ambientmesh up`: tables and a command worth trying."""

from __future__ import annotations

from typing import Any

from ambientmesh.runtime.summary import summary_lines


def pod(name: str, labels: dict[str, str], owner: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "demo", "labels": labels}
    if owner:
        metadata["ownerReferences"] = [{"kind": "Deployment", "name": owner, "controller": True}]
    return {
        "metadata": metadata,
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.244.1.2",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }  # fmt: skip


SERVICE = {
    "metadata": {"name": "echo", "namespace": "demo"},
    "spec": {"clusterIP": "10.96.0.20", "selector": {"app": "echo"}, "ports": [{"port": 80}]},
}
NODE = {
    "metadata": {"name": "node-1"},
    "status": {"addresses": [{"type": "InternalIP", "address": "10.244.1.1"}]},
}


def test_suggests_a_client_calling_a_service_through_its_deployment() -> None:
    pods = [pod("echo-1", {"app": "echo"}, "echo"), pod("client-1", {"app": "client"}, "client")]
    lines = summary_lines("dev", nodes=[NODE], pods=pods, services=[SERVICE], seconds=3.25)
    assert lines[0] == 'Cluster "dev" is up (3.2 s): 1 nodes, 2 pods, 1 services.'
    assert "  nodes: node-1 10.244.1.1" in lines
    assert "  ambientmesh exec --cluster dev -n demo deploy/client -- curl -s http://echo/" in lines
    assert "  ambientmesh down --name dev        # remove it all" in lines
    assert any(
        line.split() == ["demo", "echo-1", "node-1", "10.244.1.2", "Running,", "ready"]
        for line in lines
    )


def test_default_cluster_needs_no_flag_and_ports_show_in_urls() -> None:
    service = {**SERVICE, "spec": {**SERVICE["spec"], "ports": [{"port": 8080}]}}
    lines = summary_lines(
        "default", nodes=[NODE], pods=[pod("solo", {"app": "echo"})], services=[service], seconds=1
    )
    assert "  ambientmesh exec -n demo solo -- curl -s http://echo:8080/" in lines
    assert "  ambientmesh get pods -A" in lines
