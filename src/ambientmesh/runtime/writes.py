"""Writes the runtime makes to the API: read-modify-write with conflict retries, and status.

Metadata (finalizers, annotations) and spec changes go through `mutate`, which sends the
resourceVersion it read, so a concurrent writer is never overwritten: on a conflict it reads
again and re-applies the change. Status goes through `write_status` without a resourceVersion:
each status has exactly one writer (the kubelet of the pod's node, or one controller), so the
last write is the right one and there is nothing to merge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.errors import Conflict, NotFound
from ambientmesh.resources.kinds import KindInfo

ATTEMPTS = 8


async def mutate(
    client: AsyncApiClient,
    kind: KindInfo,
    name: str,
    namespace: str | None,
    change: Callable[[dict[str, Any]], bool],
) -> dict[str, Any] | None:
    """Apply `change` (which edits the object in place and says whether it changed anything)
    to the current object and write it; None if the object does not exist (any more)."""
    for _ in range(ATTEMPTS):
        try:
            obj = await client.get(kind, name, namespace)
        except NotFound:
            return None
        if not change(obj):
            return obj
        try:
            return await client.update(obj)
        except NotFound:
            return None
        except Conflict:
            continue
    raise Conflict(f"{kind.kind} {namespace}/{name} kept changing; gave up after {ATTEMPTS} tries")


async def write_status(
    client: AsyncApiClient, obj: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Replace the status of `obj`; None if it is gone."""
    metadata = obj.get("metadata") or {}
    body = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace")},
        "status": dict(status),
    }
    if body["metadata"]["namespace"] is None:
        del body["metadata"]["namespace"]
    try:
        return await client.update_status(body)
    except NotFound:
        return None


def set_annotations(obj: dict[str, Any], changes: Mapping[str, str | None]) -> bool:
    """Set (a value) or remove (None) annotations; True if anything changed."""
    metadata = obj.setdefault("metadata", {})
    annotations = dict(metadata.get("annotations") or {})
    for key, value in changes.items():
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    if annotations == (metadata.get("annotations") or {}):
        return False
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return True


def add_finalizer(obj: dict[str, Any], finalizer: str) -> bool:
    metadata = obj.setdefault("metadata", {})
    finalizers = list(metadata.get("finalizers") or [])
    if finalizer in finalizers or metadata.get("deletionTimestamp"):
        return False
    metadata["finalizers"] = [*finalizers, finalizer]
    return True


def remove_finalizer(obj: dict[str, Any], finalizer: str) -> bool:
    metadata = obj.setdefault("metadata", {})
    finalizers = list(metadata.get("finalizers") or [])
    if finalizer not in finalizers:
        return False
    finalizers.remove(finalizer)
    if finalizers:
        metadata["finalizers"] = finalizers
    else:
        metadata.pop("finalizers", None)
    return True
