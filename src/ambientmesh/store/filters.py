"""What a list or watch asks for: a kind, optionally a namespace, label and field selectors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ambientmesh.resources.kinds import KindInfo
from ambientmesh.resources.selectors import parse_selector
from ambientmesh.store.fields import FieldSelector, parse_field_selector


class LabelMatcher(Protocol):
    def matches(self, labels: Mapping[str, str], /) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFilter:
    """Selects objects of one kind. ``namespace=None`` means every namespace."""

    group: str
    kind: str
    namespace: str | None = None
    labels: LabelMatcher | None = None
    fields: FieldSelector | None = None

    def matches(
        self, namespace: str, name: str, labels: Mapping[str, str], fields: Mapping[str, str]
    ) -> bool:
        if self.namespace is not None and namespace != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(labels):
            return False
        if self.fields is None:
            return True
        every = {**fields, "metadata.name": name, "metadata.namespace": namespace}
        return self.fields.matches(every)

    @property
    def needs_labels(self) -> bool:
        return self.labels is not None

    @property
    def needs_fields(self) -> bool:
        return self.fields is not None


def make_filter(
    info: KindInfo,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> ListFilter:
    """Parse the selectors for ``info``; InvalidInput names a malformed one."""
    fields = None
    if field_selector:
        fields = parse_field_selector(field_selector, group=info.group, kind=info.kind)
        # metadata.namespace=x narrows like a namespace path; != stays a filter.
        pinned = fields.exact("metadata.namespace")
        if pinned is not None and namespace is None and info.namespaced:
            namespace = pinned
    return ListFilter(
        group=info.group,
        kind=info.kind,
        namespace=namespace if info.namespaced else None,
        labels=parse_selector(label_selector) if label_selector else None,
        fields=fields,
    )
