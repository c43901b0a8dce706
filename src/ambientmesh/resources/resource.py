"""The pydantic envelope shared by every Istio and Gateway API kind: apiVersion, kind, metadata."""

from __future__ import annotations

from typing import Any

from ambientmesh.resources.metadata import ObjectMeta
from ambientmesh.resources.modeling import Model


class Resource(Model):
    """An object as users write it; subclasses add a typed ``spec``. ``status`` is server-owned."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.labels or {})
