"""Builders of stored objects (JSON as the API server keeps it) for the computation tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def meta(name: str, namespace: str = "", **extra: Any) -> Obj:
    metadata: Obj = {
        "name": name,
        "creationTimestamp": extra.pop("created", "2026-01-01T00:00:00Z"),
    }
    if namespace:
        metadata["namespace"] = namespace
    metadata.update({k: v for k, v in extra.items() if v is not None})
    return metadata


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name, labels=labels)}


def node(name: str, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta(name, labels=labels)}


def pod(
    name: str,
    ns: str = "default",
    *,
    ip: str | None = "10.0.0.1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    node: str = "node-a",
    sa: str | None = None,
    ready: bool = True,
    phase: str = "Running",
    owners: list[tuple[str, str]] | None = None,
    ports: dict[str, int] | None = None,
    terminating: bool = False,
    host_network: bool = False,
) -> Obj:
    spec: Obj = {
        "nodeName": node,
        "containers": [
            {
                "name": "app",
                "image": "echo",
                "ports": [{"name": n, "containerPort": p} for n, p in (ports or {}).items()],
            }
        ],
    }
    if sa:
        spec["serviceAccountName"] = sa
    if host_network:
        spec["hostNetwork"] = True
    status: Obj = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    metadata = meta(
        name,
        ns,
        labels=labels,
        annotations=annotations,
        ownerReferences=[
            {"apiVersion": "apps/v1", "kind": k, "name": n, "uid": "u"} for k, n in owners or []
        ]
        or None,
        deletionTimestamp="2026-01-01T00:00:00Z" if terminating else None,
    )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def service(
    name: str,
    ns: str = "default",
    *,
    selector: dict[str, str] | None = None,
    ports: list[Obj] | None = None,
    vip: str | None = "10.96.0.10",
    labels: dict[str, str] | None = None,
    **spec_extra: Any,
) -> Obj:
    spec: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 80}]}
    if selector is not None:
        spec["selector"] = selector
    if vip:
        spec["clusterIP"] = vip
        spec["clusterIPs"] = [vip]
    spec.update(spec_extra)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, ns, labels=labels),
        "spec": spec,
    }


def waypoint(
    name: str = "waypoint",
    ns: str = "default",
    *,
    ready: bool = True,
    traffic: str | None = None,
    annotations: dict[str, str] | None = None,
    routes_from: str = "Same",
    class_name: str = "istio-waypoint",
) -> Obj:
    labels = {"istio.io/waypoint-for": traffic} if traffic else None
    status: Obj = {}
    if ready:
        status["addresses"] = [{"type": "Hostname", "value": f"{name}.{ns}.svc.cluster.local"}]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": meta(name, ns, labels=labels, annotations=annotations),
        "spec": {
            "gatewayClassName": class_name,
            "listeners": [
                {
                    "name": "mesh",
                    "port": 15008,
                    "protocol": "HBONE",
                    "allowedRoutes": {"namespaces": {"from": routes_from}},
                }
            ],
        },
        "status": status,
    }


def policy(name: str, ns: str = "default", spec: Obj | None = None, **meta_extra: Any) -> Obj:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": meta(name, ns, **meta_extra),
        "spec": spec if spec is not None else {},
    }


def peer_auth(
    name: str,
    ns: str = "istio-system",
    *,
    mode: str | None = None,
    selector: dict[str, str] | None = None,
    ports: dict[int, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> Obj:
    spec: Obj = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    if ports:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": meta(name, ns, created=created),
        "spec": spec,
    }


def service_entry(name: str, ns: str = "default", **spec: Any) -> Obj:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta(name, ns),
        "spec": spec,
    }
