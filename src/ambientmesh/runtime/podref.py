"""Which pod `exec` and `logs` act on: `NAME`, `pod/NAME` or `deploy/NAME`; pure choices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput, NotFound
from ambientmesh.runtime.controllers.pods import controller_uid

_KINDS = {
    "pod": "pod", "pods": "pod", "po": "pod",
    "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    kind: str  # "pod" or "deployment"
    name: str


def parse_target(text: str) -> Target:
    kind, slash, name = text.partition("/")
    if not slash:
        return Target(kind="pod", name=text)
    resolved = _KINDS.get(kind.lower())
    if resolved is None or not name:
        raise InvalidInput(f"{text!r}: use POD, pod/NAME or deploy/NAME")
    return Target(kind=resolved, name=name)


def pick_pod(deployment: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A pod of `deployment`: the first ready one by name, else the first running one."""
    uid = (deployment.get("metadata") or {}).get("uid")
    owned = sorted(
        (dict(pod) for pod in pods if controller_uid(pod) == uid and not _deleting(pod)),
        key=lambda pod: str(pod["metadata"].get("name")),
    )
    for wanted in (_ready, _running):
        for pod in owned:
            if wanted(pod):
                return pod
    name = (deployment.get("metadata") or {}).get("name")
    raise NotFound(f'deployment "{name}" has no running pod')


def container_name(pod: Mapping[str, Any], wanted: str | None) -> tuple[str, str | None]:
    """The container to use and, when the choice was made for the user, a note saying so."""
    names = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = (pod.get("metadata") or {}).get("name")
    if wanted is not None:
        if wanted not in names:
            choices = ", ".join(names)
            raise NotFound(f"container {wanted} is not valid for pod {pod_name}; use {choices}")
        return wanted, None
    if not names:
        raise NotFound(f"pod {pod_name} has no containers")
    note = None
    if len(names) > 1:
        note = f'Defaulted container "{names[0]}" out of: {", ".join(names)}'
    return names[0], note


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _running(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def _ready(pod: Mapping[str, Any]) -> bool:
    return _running(pod) and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )
