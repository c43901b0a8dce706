"""What the workload controllers read from pods and how they make them; pure."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Kubernetes leaves out vowels and look-alike characters so generated names spell nothing.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSummary:
    """The facts about one owned pod that reconcile decisions use."""

    name: str
    phase: str = "Pending"
    ready: bool = False
    deleting: bool = False
    bound: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    created: str = ""  # creationTimestamp, RFC 3339 (sorts as text)
    restarts: int = 0
    finished_at: str = ""  # latest container finishedAt, for Job back-off

    @property
    def active(self) -> bool:
        """Counts as a running replica: not being deleted and not finished."""
        return not self.deleting and self.phase not in ("Succeeded", "Failed")


def summarize(pod: Mapping[str, Any]) -> PodSummary:
    metadata = _map(pod.get("metadata"))
    status = _map(pod.get("status"))
    conditions = [_map(c) for c in status.get("conditions") or []]
    containers = [_map(c) for c in status.get("containerStatuses") or []]
    finished = [
        str(_map(_map(c.get(key)).get("terminated")).get("finishedAt") or "")
        for c in containers
        for key in ("state", "lastState")
    ]
    return PodSummary(
        name=str(metadata.get("name", "")),
        phase=str(status.get("phase") or "Pending"),
        ready=status.get("phase") == "Running"
        and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        deleting=bool(metadata.get("deletionTimestamp")),
        bound=bool(_map(pod.get("spec")).get("nodeName")),
        labels={str(k): str(v) for k, v in _map(metadata.get("labels")).items()},
        created=str(metadata.get("creationTimestamp") or ""),
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
        finished_at=max(finished, default=""),
    )


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controlling owner, if it has one."""
    for ref in _map(obj.get("metadata")).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid") or "") or None
    return None


def controller_of(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's controlling owner."""
    for ref in _map(obj.get("metadata")).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _map(owner.get("metadata"))
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": metadata.get("name"),
        "uid": metadata.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def template_hash(template: Mapping[str, Any]) -> str:
    """A stable short hash of a pod template, in Kubernetes' safe alphabet (pod-template-hash)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    number = int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, digit = divmod(number, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[digit])
    return "".join(chars)


def pod_from_template(
    owner: Mapping[str, Any],
    *,
    generate_name: str,
    extra_labels: Mapping[str, str],
) -> dict[str, Any]:
    """A Pod manifest from the owner's `spec.template`, owned by it, named by the API server."""
    template = _map(_map(owner.get("spec")).get("template"))
    template_meta = _map(template.get("metadata"))
    metadata: dict[str, Any] = {
        "generateName": generate_name,
        "namespace": _map(owner.get("metadata")).get("namespace") or "default",
        "labels": {**_map(template_meta.get("labels")), **extra_labels},
        "ownerReferences": [owner_reference(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(_map(template_meta.get("annotations")))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(dict(_map(template.get("spec")))),
    }


def condition(kind: str, status: bool, *, reason: str = "", message: str = "") -> dict[str, Any]:
    """A condition without timestamps; `with_times` adds them."""
    value: dict[str, Any] = {"type": kind, "status": "True" if status else "False"}
    if reason:
        value["reason"] = reason
    if message:
        value["message"] = message
    return value


def with_times(
    conditions: list[dict[str, Any]], previous: Any, now: str, *, probe_field: str
) -> list[dict[str, Any]]:
    """Add `probe_field` (lastUpdateTime/lastProbeTime) and lastTransitionTime, keeping the old
    transition time of a condition whose status did not change."""
    before = {_map(c).get("type"): _map(c) for c in previous or [] if isinstance(c, Mapping)}
    result = []
    for item in conditions:
        old = before.get(item["type"])
        same = old is not None and old.get("status") == item["status"]
        unchanged = (
            same
            and old is not None
            and all(old.get(k) == item.get(k) for k in ("reason", "message"))
        )
        stamped = dict(item)
        stamped[probe_field] = old.get(probe_field, now) if unchanged and old else now
        stamped["lastTransitionTime"] = old.get("lastTransitionTime", now) if same and old else now
        result.append(stamped)
    return result


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
