"""Discovery documents (``/api``, ``/apis``, ``/apis/<group>/<version>``) for the served kinds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ambientmesh.errors import NotFound
from ambientmesh.resources.kinds import KindInfo

_VERBS = ["create", "delete", "get", "list", "update", "watch"]


def core_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


def group_list(kinds: Sequence[KindInfo]) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups(kinds)}


def group(kinds: Sequence[KindInfo], name: str) -> dict[str, Any]:
    for entry in _groups(kinds):
        if entry["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    raise NotFound(f'the server has no API group "{name}"')


def resource_list(kinds: Sequence[KindInfo], group_name: str, version: str) -> dict[str, Any]:
    served = [info for info in kinds if info.group == group_name and version in info.versions]
    if not served:
        where = f"{group_name}/{version}" if group_name else version
        raise NotFound(f'the server serves no resources at "{where}"')
    resources: list[dict[str, Any]] = []
    for info in served:
        resources.append(
            {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": _VERBS,
                "shortNames": list(info.short_names),
            }
        )
        if info.has_status:
            resources.append(
                {
                    "name": f"{info.plural}/status",
                    "singularName": "",
                    "namespaced": info.namespaced,
                    "kind": info.kind,
                    "verbs": ["get", "update"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": resources,
    }


def _groups(kinds: Sequence[KindInfo]) -> list[dict[str, Any]]:
    versions: dict[str, list[str]] = {}
    preferred: dict[str, str] = {}
    for info in kinds:
        if not info.group:
            continue
        known = versions.setdefault(info.group, [])
        known.extend(v for v in info.versions if v not in known)
        preferred.setdefault(info.group, info.preferred_version)
    return [
        {
            "name": name,
            "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in group_versions],
            "preferredVersion": {
                "groupVersion": f"{name}/{preferred[name]}",
                "version": preferred[name],
            },
        }
        for name, group_versions in versions.items()
    ]
