"""Rendering objects for people (kubectl-style tables) and for programs (JSON, YAML, names)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml

from ambientmesh.resources.kinds import KindInfo

Row = list[str]
Columns = list[tuple[str, Callable[[Mapping[str, Any]], str]]]


def age(created: str | None, now: datetime) -> str:
    """kubectl's short age: 42s, 5m, 3h, 12d."""
    if not created:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _get(obj: Mapping[str, Any], *path: str | int, default: Any = None) -> Any:
    value: Any = obj
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return default
            value = value[key]
        else:
            if not isinstance(value, Mapping) or key not in value:
                return default
            value = value[key]
    return value


def _join(values: Any, empty: str = "<none>") -> str:
    if not values:
        return empty
    return ",".join(str(v) for v in values)


def _pod_ready(pod: Mapping[str, Any]) -> str:
    containers = _get(pod, "spec", "containers", default=[]) or []
    statuses = _get(pod, "status", "containerStatuses", default=[]) or []
    ready = sum(1 for status in statuses if status.get("ready"))
    return f"{ready}/{len(containers)}"


def _pod_restarts(pod: Mapping[str, Any]) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[]) or []
    return str(sum(int(status.get("restartCount", 0)) for status in statuses))


def _pod_status(pod: Mapping[str, Any]) -> str:
    if _get(pod, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(_get(pod, "status", "reason") or _get(pod, "status", "phase", default="Pending"))


def _service_ports(svc: Mapping[str, Any]) -> str:
    ports = _get(svc, "spec", "ports", default=[]) or []
    return _join([f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports])


def _condition(obj: Mapping[str, Any], kind: str) -> str:
    for condition in _get(obj, "status", "conditions", default=[]) or []:
        if condition.get("type") == kind:
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def _deployment_ready(obj: Mapping[str, Any]) -> str:
    ready = _get(obj, "status", "readyReplicas", default=0) or 0
    return f"{ready}/{_get(obj, 'spec', 'replicas', default=1)}"


def _job_status(obj: Mapping[str, Any]) -> str:
    for kind in ("Complete", "Failed"):
        if _condition(obj, kind) == "True":
            return kind
    return "Running"


def _job_completions(obj: Mapping[str, Any]) -> str:
    succeeded = _get(obj, "status", "succeeded", default=0) or 0
    return f"{succeeded}/{_get(obj, 'spec', 'completions', default=1)}"


def _node_ready(obj: Mapping[str, Any]) -> str:
    return "Ready" if _condition(obj, "Ready") == "True" else "NotReady"


def _node_address(obj: Mapping[str, Any]) -> str:
    for address in _get(obj, "status", "addresses", default=[]) or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return "<none>"


def _field(*path: str | int, empty: str = "<none>") -> Callable[[Mapping[str, Any]], str]:
    def render(obj: Mapping[str, Any]) -> str:
        value = _get(obj, *path)
        if value is None or value in ("", []):
            return empty
        if isinstance(value, list):
            return _join(value, empty)
        return str(value)

    return render


# Columns between NAME and AGE, per kind; "wide" adds the second list.
_COLUMNS: dict[str, tuple[Columns, Columns]] = {
    "Pod": (
        [("READY", _pod_ready), ("STATUS", _pod_status), ("RESTARTS", _pod_restarts)],
        [("IP", _field("status", "podIP")), ("NODE", _field("spec", "nodeName"))],
    ),
    "Service": (
        [
            ("TYPE", _field("spec", "type", empty="ClusterIP")),
            ("CLUSTER-IP", _field("spec", "clusterIP")),
            ("PORT(S)", _service_ports),
        ],
        [
            (
                "SELECTOR",
                lambda o: _join(
                    [f"{k}={v}" for k, v in _get(o, "spec", "selector", default={}).items()]
                ),
            )
        ],
    ),
    "Deployment": ([("READY", _deployment_ready)], []),
    "Job": ([("STATUS", _job_status), ("COMPLETIONS", _job_completions)], []),
    "Namespace": ([("STATUS", _field("status", "phase", empty="Active"))], []),
    "Node": ([("STATUS", _node_ready)], [("INTERNAL-IP", _node_address)]),
    "Gateway": (
        [
            ("CLASS", _field("spec", "gatewayClassName")),
            ("ADDRESS", _field("status", "addresses", 0, "value")),
            ("PROGRAMMED", lambda o: _condition(o, "Programmed")),
        ],
        [],
    ),
    "AuthorizationPolicy": ([("ACTION", _field("spec", "action", empty="ALLOW"))], []),
    "PeerAuthentication": ([("MODE", _field("spec", "mtls", "mode", empty="UNSET"))], []),
    "VirtualService": (
        [("GATEWAYS", _field("spec", "gateways")), ("HOSTS", _field("spec", "hosts"))],
        [],
    ),
    "DestinationRule": ([("HOST", _field("spec", "host"))], []),
    "ServiceEntry": (
        [
            ("HOSTS", _field("spec", "hosts")),
            ("LOCATION", _field("spec", "location", empty="")),
            ("RESOLUTION", _field("spec", "resolution", empty="NONE")),
        ],
        [],
    ),
    "HTTPRoute": ([("HOSTNAMES", _field("spec", "hostnames", empty=""))], []),
    "GatewayClass": (
        [
            ("CONTROLLER", _field("spec", "controllerName")),
            ("ACCEPTED", lambda o: _condition(o, "Accepted")),
        ],
        [],
    ),
}


def table(
    kind: KindInfo,
    objects: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    with_namespace: bool,
    wide: bool,
) -> str:
    """A kubectl-style table: left-aligned columns separated by three spaces."""
    narrow, extra = _COLUMNS.get(kind.kind, ([], []))
    columns: Columns = [("NAME", _field("metadata", "name"))]
    if with_namespace:
        columns.insert(0, ("NAMESPACE", _field("metadata", "namespace")))
    columns += narrow
    columns.append(("AGE", lambda o: age(_get(o, "metadata", "creationTimestamp"), now)))
    if wide:
        columns += extra
    rows: list[Row] = [[title for title, _ in columns]]
    rows += [[render(obj) for _, render in columns] for obj in objects]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def resource_name(kind: KindInfo, name: str) -> str:
    """How kubectl names an object: ``pod/web``, ``gateway.gateway.networking.k8s.io/w``."""
    prefix = f"{kind.singular}.{kind.group}" if kind.group else kind.singular
    return f"{prefix}/{name}"


def as_list(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {}}


def dump(value: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(value, indent=4)
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")
