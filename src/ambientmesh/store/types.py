"""Values the store hands out: object keys, lists, watch events and apply results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ambientmesh.resources.kinds import KindInfo

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
ApplyAction = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectKey:
    """Where an object lives: (group, kind, namespace, name); namespace is "" if cluster-scoped."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, info: KindInfo, name: str, namespace: str | None) -> ObjectKey:
        return cls(
            group=info.group,
            kind=info.kind,
            namespace=(namespace or "") if info.namespaced else "",
            name=name,
        )

    def describe(self) -> str:
        """``Pod default/web`` or ``Namespace prod``, the way messages name an object."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectList:
    """The result of a list: the items and the store's resourceVersion when it was read."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchEvent:
    """One change as a watcher sees it. ``BOOKMARK`` and ``ERROR`` appear only on the wire."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What batch apply did (or, in a dry run, would do) to one object."""

    kind: str
    namespace: str | None
    name: str
    action: ApplyAction

    def describe(self) -> str:
        """kubectl's line: ``pod/web created``."""
        return f"{self.kind.lower()}/{self.name} {self.action}"
