"""The envelope every object shares: ``apiVersion``, ``kind`` and ``metadata`` (ObjectMeta).

Users may send back objects they read from the server, so the fields the server sets (uid,
resourceVersion, generation, timestamps, finalizers, ownerReferences, managedFields) are
accepted and type-checked, as the Kubernetes API server does; any other field is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import FieldIssue, invalid, wrong_type
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.resources.modeling import (
    DNSLabel,
    LabelKey,
    Labels,
    Model,
    NonEmpty,
    Problems,
    issues_from_error,
    rule,
)

ANNOTATIONS_MAX_BYTES = 256 * 1024


def _timestamp_error(value: str) -> str | None:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return invalid(value, "must be an RFC 3339 timestamp such as 2024-05-01T12:00:00Z")
    return None


Timestamp = Annotated[str, rule(_timestamp_error)]


class OwnerReference(Model):
    api_version: NonEmpty
    kind: NonEmpty
    name: NonEmpty
    uid: NonEmpty
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Model):
    """Kubernetes ObjectMeta: what users set, and what the server sets and echoes back."""

    name: str
    namespace: DNSLabel | None = None
    labels: Labels | None = None
    annotations: dict[LabelKey, str] | None = None
    generate_name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    deletion_grace_period_seconds: int | None = None
    finalizers: list[LabelKey] | None = None
    owner_references: list[OwnerReference] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = Field(default=None, alias="selfLink")

    @model_validator(mode="after")
    def _annotation_size(self) -> ObjectMeta:
        if self.annotations:
            size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
            if size > ANNOTATIONS_MAX_BYTES:
                problems = Problems()
                problems.add(
                    "annotations",
                    f"too long: {size} bytes, must have at most {ANNOTATIONS_MAX_BYTES} bytes",
                )
                problems.raise_if_any()
        return self


def _name_error(info: KindInfo, name: str) -> str | None:
    """Each kind's name rule, as the Kubernetes API server applies it."""
    if info.group == "" and info.kind == "Namespace":
        return common.dns_label_error(name)
    if info.group == "" and info.kind == "Service":
        # Kubernetes requires RFC 1035 labels for Services: the name becomes a DNS label.
        return common.dns1035_label_error(name)
    if info.group == "batch" and info.kind == "Job" and len(name) > common.DNS_LABEL_MAX:
        # The Job name becomes a label value on its pods, which is limited to 63 characters.
        return invalid(name, f"must be no more than {common.DNS_LABEL_MAX} characters")
    return common.dns_subdomain_error(name)


def check_metadata(obj: Mapping[str, Any], info: KindInfo) -> list[FieldIssue]:
    """Every problem in ``obj["metadata"]`` for an object of kind ``info``."""
    metadata = obj.get("metadata")
    if metadata is None:
        return [FieldIssue(path="metadata", message="required value")]
    if not isinstance(metadata, Mapping):
        return [FieldIssue(path="metadata", message=wrong_type("object", metadata))]
    issues: list[FieldIssue] = []
    try:
        ObjectMeta.model_validate(metadata, by_name=False)
    except ValidationError as error:
        for issue in issues_from_error(error, ObjectMeta):
            issues.append(FieldIssue(path=f"metadata.{issue.path}", message=issue.message))
    name = metadata.get("name")
    if isinstance(name, str):
        message = "required value" if not name else _name_error(info, name)
        if message is not None:
            issues.append(FieldIssue(path="metadata.name", message=message))
    return issues


def check_template_metadata(metadata: Any, path: str) -> list[FieldIssue]:
    """A pod template's metadata: the same field rules, but no name is required."""
    if metadata is None:
        return []
    if not isinstance(metadata, Mapping):
        return [FieldIssue(path=path, message=wrong_type("object", metadata))]
    try:
        ObjectMeta.model_validate({"name": "template", **metadata}, by_name=False)
    except ValidationError as error:
        return [
            FieldIssue(path=f"{path}.{issue.path}", message=issue.message)
            for issue in issues_from_error(error, ObjectMeta)
        ]
    return []
