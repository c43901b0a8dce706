"""``ambientmesh ztunnel-config workloads|services|policies``: what ztunnels are sent.

Reads the control plane's config dump (``/apis/ambientmesh.io/v1/configdump``) and prints it
as a table, like ``istioctl ztunnel-config``, or as JSON with ``-o json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

CONFIG_DUMP_PATH = "/apis/ambientmesh.io/v1/configdump"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "ztunnel-config", help="show the workloads, services and policies ztunnels are sent"
    )
    parser.add_argument("section", choices=("workloads", "services", "policies", "all"))
    parser.add_argument("--node", help="the ztunnel of this node (workloads: only this node's)")
    parser.add_argument("-n", "--namespace", help="only objects of this namespace")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--cluster", default="default")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ambientmesh.apiserver.client import ApiClient

    with ApiClient.for_cluster(args.cluster) as client:
        params = {"node": args.node} if args.node else None
        dump = client.request("GET", CONFIG_DUMP_PATH, params=params)
    print(render(dump, args.section, node=args.node, namespace=args.namespace, output=args.output))
    return 0


def render(
    dump: dict[str, Any],
    section: str,
    *,
    node: str | None = None,
    namespace: str | None = None,
    output: str = "table",
) -> str:
    sections = ("workloads", "services", "policies") if section == "all" else (section,)
    selected = {name: _filter(dump.get(name, []), name, node, namespace) for name in sections}
    if output == "json":
        body: Any = selected if section == "all" else selected[section]
        return json.dumps(body, indent=2, sort_keys=True)
    return "\n\n".join(_TABLES[name](selected[name]) for name in sections)


def _filter(
    items: list[dict[str, Any]], section: str, node: str | None, namespace: str | None
) -> list[dict[str, Any]]:
    out = [i for i in items if namespace is None or i.get("namespace") == namespace]
    if section == "workloads" and node is not None:
        out = [i for i in out if i.get("node") == node]
    return out


def _table(header: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [header, *rows]
    return "\n".join(
        "   ".join(
            str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def _waypoint(item: dict[str, Any]) -> str:
    destination = str((item.get("waypoint") or {}).get("destination", ""))
    if not destination:
        return "None"
    host = destination.split("/", 1)[-1].rsplit(":", 1)[0]
    return host.split(".")[0]


def _workloads(items: list[dict[str, Any]]) -> str:
    rows = [
        [
            w["namespace"],
            w["name"],
            ",".join(w.get("workloadIps", [])) or "None",
            w.get("node", ""),
            _waypoint(w),
            w.get("protocol", ""),
        ]
        for w in items
    ]
    return _table(["NAMESPACE", "POD NAME", "ADDRESS", "NODE", "WAYPOINT", "PROTOCOL"], rows)


def _services(items: list[dict[str, Any]]) -> str:
    rows = []
    for s in items:
        endpoints = s.get("endpoints") or {}
        healthy = sum(1 for e in endpoints.values() if e.get("status") == "HEALTHY")
        vips = ",".join(v.split("/", 1)[-1] for v in s.get("vips", [])) or "None"
        rows.append([s["namespace"], s["name"], vips, _waypoint(s), f"{healthy}/{len(endpoints)}"])
    return _table(["NAMESPACE", "SERVICE NAME", "SERVICE VIP", "WAYPOINT", "ENDPOINTS"], rows)


def _scope(policy: dict[str, Any]) -> str:
    if policy["scope"] == "GLOBAL":
        return "Global"
    if policy["scope"] == "NAMESPACE":
        return f"Namespace {policy['namespace']}"
    return f"Workload {policy['namespace']}/{policy['name']}"


def _policies(items: list[dict[str, Any]]) -> str:
    rows = [[p["namespace"], p["name"], p["action"].capitalize(), _scope(p)] for p in items]
    return _table(["NAMESPACE", "POLICY NAME", "ACTION", "SCOPE"], rows)


_TABLES = {"workloads": _workloads, "services": _services, "policies": _policies}
