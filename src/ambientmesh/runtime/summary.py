"""The short report `ambientmesh up` ends with: nodes, pods, services and what to try; pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_CLUSTER = "default"


def summary_lines(
    cluster: str,
    *,
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    seconds: float,
) -> list[str]:
    flag = "" if cluster == DEFAULT_CLUSTER else f" --cluster {cluster}"
    user_services = [s for s in services if _namespace(s) != "default" or _name(s) != "kubernetes"]
    lines = [
        f'Cluster "{cluster}" is up ({seconds:.1f} s): {len(nodes)} nodes, {len(pods)} pods, '
        f"{len(user_services)} services.",
        "  nodes: " + ", ".join(f"{_name(n)} {_node_ip(n)}" for n in nodes),
    ]
    pod_rows = [("NAMESPACE", "POD", "NODE", "IP", "STATUS")]
    pod_rows += [
        (_namespace(p), _name(p), str(_spec(p).get("nodeName") or "-"),
         str(_status(p).get("podIP") or "-"), _pod_state(p))
        for p in pods
    ]  # fmt: skip
    if pods:
        lines += _table(pod_rows)
    service_rows = [("NAMESPACE", "SERVICE", "CLUSTER-IP", "PORTS")]
    service_rows += [
        (_namespace(s), _name(s), str(_spec(s).get("clusterIP") or "-"), _ports(s))
        for s in user_services
    ]
    if user_services:
        lines += _table(service_rows)
    lines += ["Next:"]
    example = _example(pods, user_services)
    if example is not None:
        namespace, pod, url = example
        ns = "" if namespace == "default" else f" -n {namespace}"
        lines.append(f"  ambientmesh exec{flag}{ns} {pod} -- curl -s {url}")
        lines.append(f"  ambientmesh logs{flag}{ns} {pod}")
    lines += [
        f"  ambientmesh get pods -A{flag}",
        f"  ambientmesh down --name {cluster}        # remove it all",
    ]
    return lines


def _example(
    pods: Sequence[Mapping[str, Any]], services: Sequence[Mapping[str, Any]]
) -> tuple[str, str, str] | None:
    """A pod and a Service URL to try from it: a pure client (a pod no Service selects) calling
    a Service of its namespace if there is one, else any running pod calling a Service."""
    running = [p for p in pods if _status(p).get("phase") == "Running"]
    selectors: list[tuple[str, Mapping[str, Any]]] = [
        (_namespace(s), _spec(s)["selector"]) for s in services if _spec(s).get("selector")
    ]
    clients = [
        p
        for p in running
        if not any(ns == _namespace(p) and _selected(p, sel) for ns, sel in selectors)
    ]
    for candidates in (clients, running):
        for service in services:
            ports = _spec(service).get("ports") or []
            nearby = [p for p in candidates if _namespace(p) == _namespace(service)]
            if ports and _spec(service).get("selector") and nearby:
                port = ports[0].get("port")
                url = f"http://{_name(service)}" + ("" if port == 80 else f":{port}") + "/"
                return _namespace(service), _target(nearby[0]), url
    return None


def _target(pod: Mapping[str, Any]) -> str:
    """`deploy/NAME` for a Deployment's pod (it survives a rollout), else the pod's name."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Deployment":
            return f"deploy/{ref.get('name')}"
    return _name(pod)


def _pod_state(pod: Mapping[str, Any]) -> str:
    status = _status(pod)
    phase = str(status.get("phase") or "Pending")
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return f"{phase}{', ready' if ready else ''}"


def _selected(pod: Mapping[str, Any], selector: Mapping[str, Any]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _ports(service: Mapping[str, Any]) -> str:
    return ",".join(
        f"{p.get('port')}/{p.get('protocol') or 'TCP'}" for p in _spec(service).get("ports") or []
    )


def _node_ip(node: Mapping[str, Any]) -> str:
    for address in _status(node).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "-"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _namespace(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}
