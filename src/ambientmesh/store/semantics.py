"""The Kubernetes object rules as pure functions: what a create, update, status update,
apply or delete turns the stored object into. No I/O; the transaction calls these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ambientmesh.errors import Conflict, InvalidInput, MeshError, ValidationFailed
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import ObjectKey

# metadata fields only the server sets; a client's values are ignored or must match.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
# Top-level fields that are not "the spec": changes elsewhere bump metadata.generation.
_ENVELOPE = frozenset({"apiVersion", "kind", "metadata", "status"})


class Forbidden(InvalidInput):
    """The request is well formed but the object's state forbids it (403, as Kubernetes)."""

    status = 403
    reason = "Forbidden"


class ObjectInvalid(ValidationFailed):
    """One object failed validation or admission; ``causes`` are (field path, message) pairs.
    Each issue line reads ``<Kind> <namespace>/<name>: <field.path>: <message>``."""

    def __init__(self, subject: str, causes: list[tuple[str, str]]) -> None:
        self.subject = subject
        self.causes = tuple(causes)
        super().__init__(
            [
                f"{subject}: {field}: {message}" if field else f"{subject}: {message}"
                for field, message in causes
            ]
        )


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format: second precision, UTC, ``Z`` suffix."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    labels = metadata_of(obj).get("labels")
    return dict(labels) if isinstance(labels, Mapping) else {}


def finalizers_of(obj: Mapping[str, Any]) -> list[str]:
    finalizers = metadata_of(obj).get("finalizers")
    return list(finalizers) if isinstance(finalizers, list) else []


def owner_uids_of(obj: Mapping[str, Any]) -> list[str]:
    refs = metadata_of(obj).get("ownerReferences")
    if not isinstance(refs, list):
        return []
    return [
        ref["uid"] for ref in refs if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str)
    ]


def describe(info: KindInfo, obj: Mapping[str, Any]) -> str:
    """``Pod default/web``: how messages name an object (namespace defaulted as it will be)."""
    meta = metadata_of(obj)
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    if not info.namespaced:
        return f"{info.kind} {name}"
    return f"{info.kind} {meta.get('namespace') or 'default'}/{name}"


def key_for(info: KindInfo, obj: Mapping[str, Any], default_namespace: str) -> ObjectKey:
    meta = metadata_of(obj)
    return ObjectKey.of(info, str(meta.get("name", "")), meta.get("namespace") or default_namespace)


def normalize(info: KindInfo, obj: Mapping[str, Any], key: ObjectKey) -> dict[str, Any]:
    """A copy with the preferred apiVersion and the key's namespace (none if cluster-scoped)."""
    result = dict(obj)
    result["apiVersion"] = info.api_version
    result["kind"] = info.kind
    metadata = dict(metadata_of(obj))
    metadata["name"] = key.name
    if info.namespaced:
        metadata["namespace"] = key.namespace
    else:
        metadata.pop("namespace", None)
    metadata.pop("selfLink", None)
    metadata.pop("managedFields", None)
    result["metadata"] = metadata
    return result


def for_create(info: KindInfo, obj: dict[str, Any], *, uid: str, now: datetime) -> dict[str, Any]:
    """Server fields of a new object. Status is cleared for kinds with a status subresource
    (Kubernetes' strategies do the same: status is written through /status only)."""
    metadata = obj["metadata"]
    if metadata.get("resourceVersion"):
        raise InvalidInput(
            f"{describe(info, obj)}: metadata.resourceVersion must not be set on objects "
            "to be created"
        )
    for field in SERVER_METADATA:
        metadata.pop(field, None)
    metadata["uid"] = uid
    metadata["creationTimestamp"] = rfc3339(now)
    metadata["generation"] = 1
    if info.has_status:
        obj.pop("status", None)
    return obj


def check_preconditions(
    info: KindInfo, body: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """Optimistic concurrency: a body's resourceVersion (and uid) must match what is stored."""
    wanted_rv = metadata_of(body).get("resourceVersion")
    stored = metadata_of(current)
    if wanted_rv and str(wanted_rv) != str(stored.get("resourceVersion")):
        raise conflict(info, str(stored.get("name")))
    wanted_uid = metadata_of(body).get("uid")
    if wanted_uid and wanted_uid != stored.get("uid"):
        raise conflict(
            info,
            str(stored.get("name")),
            f"Precondition failed: UID in precondition: {wanted_uid}, "
            f"UID in object meta: {stored.get('uid')}",
        )


def conflict(info: KindInfo, name: str, why: str | None = None) -> MeshError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return Conflict(f'Operation cannot be fulfilled on {info.qualified_plural} "{name}": {why}')


def for_update(info: KindInfo, old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Replace: keep the server's metadata and (with a status subresource) the status."""
    old_meta = metadata_of(old)
    metadata = new["metadata"]
    for field in SERVER_METADATA:
        if field in old_meta:
            metadata[field] = old_meta[field]
        else:
            metadata.pop(field, None)
    if info.has_status:
        _copy_field(old, new, "status")
    if old_meta.get("deletionTimestamp"):
        added = set(finalizers_of(new)) - set(finalizers_of(old))
        if added:
            raise ObjectInvalid(
                describe(info, new),
                [
                    (
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    )
                ],
            )
    return new


def for_status_update(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The status subresource: only ``status`` changes."""
    result = dict(old)
    result["metadata"] = dict(metadata_of(old))
    _copy_field(new, result, "status")
    return result


def for_apply(old: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Apply onto a live object: the manifest's labels, annotations and every top-level field
    but status replace the live ones; status and all other metadata stay."""
    result: dict[str, Any] = {key: value for key, value in old.items() if key in _ENVELOPE}
    result.update((key, value) for key, value in manifest.items() if key not in _ENVELOPE)
    result["apiVersion"], result["kind"] = manifest["apiVersion"], manifest["kind"]
    metadata = dict(metadata_of(old))
    manifest_meta = metadata_of(manifest)
    for field in ("labels", "annotations"):
        if manifest_meta.get(field):
            metadata[field] = manifest_meta[field]
        else:
            metadata.pop(field, None)
    result["metadata"] = metadata
    return result


def with_generation(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Bump ``metadata.generation`` when anything outside metadata and status changed."""
    if _spec_of(old) != _spec_of(new):
        generation = metadata_of(old).get("generation")
        new["metadata"]["generation"] = (generation if isinstance(generation, int) else 0) + 1
    return new


def mark_deleting(obj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    result = dict(obj)
    metadata = dict(metadata_of(obj))
    metadata["deletionTimestamp"] = rfc3339(now)
    metadata["deletionGracePeriodSeconds"] = 0
    result["metadata"] = metadata
    return result


def without_owner(obj: Mapping[str, Any], owner_uid: str) -> dict[str, Any]:
    result = dict(obj)
    metadata = dict(metadata_of(obj))
    refs = [ref for ref in metadata.get("ownerReferences") or [] if ref.get("uid") != owner_uid]
    if refs:
        metadata["ownerReferences"] = refs
    else:
        metadata.pop("ownerReferences", None)
    result["metadata"] = metadata
    return result


def same_except_version(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when a write would change nothing (so no new resourceVersion and no event)."""
    old_meta = {k: v for k, v in metadata_of(old).items() if k != "resourceVersion"}
    new_meta = {k: v for k, v in metadata_of(new).items() if k != "resourceVersion"}
    if old_meta != new_meta:
        return False
    return {k: v for k, v in old.items() if k != "metadata"} == {
        k: v for k, v in new.items() if k != "metadata"
    }


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in _ENVELOPE}


def _copy_field(source: Mapping[str, Any], target: dict[str, Any], field: str) -> None:
    if field in source:
        target[field] = source[field]
    else:
        target.pop(field, None)
