"""Kubernetes-style resource paths: parsing ``/api/v1/namespaces/ns/pods/web/status`` and back."""

from __future__ import annotations

from dataclasses import dataclass

from ambientmesh.errors import NotFound
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo

SUBRESOURCES = ("status",)
APPLY_PATH = "/apis/ambientmesh.io/v1/apply"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourcePath:
    """What a resource URL names. ``namespace=None`` lists across namespaces (or the kind is
    cluster-scoped); ``name=None`` names the collection."""

    kind: KindInfo
    version: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def api_version(self) -> str:
        return self.kind.api_version_for(self.version)


def parse_resource_path(path: str) -> ResourcePath:
    """Parse a resource URL path; ``NotFound`` (404, as Kubernetes answers) says what is wrong."""
    segments = [segment for segment in path.split("/") if segment]
    if segments[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise NotFound(f"the server could not find the requested resource: {path}")
    if not rest:
        raise NotFound(f"the server could not find the requested resource: {path}")
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    else:
        namespace = None
    plural, rest = rest[0], rest[1:]
    if len(rest) > 2 or (len(rest) == 2 and rest[1] not in SUBRESOURCES):
        raise NotFound(f"the server could not find the requested resource: {path}")
    try:
        info = kinds.by_group_plural(group, plural)
    except Exception as error:
        raise NotFound(str(error)) from None
    if version not in info.versions:
        served = ", ".join(info.api_version_for(v) for v in info.versions)
        raise NotFound(
            f"{info.qualified_plural} are not served at {group or 'core'}/{version}; "
            f"served versions: {served}"
        )
    name = rest[0] if rest else None
    subresource = rest[1] if len(rest) == 2 else None
    if namespace is not None and not info.namespaced:
        raise NotFound(
            f"{info.qualified_plural} are cluster-scoped; address them without /namespaces/"
        )
    if info.namespaced and namespace is None and name is not None:
        raise NotFound(
            f"{info.qualified_plural} are namespaced; address one as "
            f"{collection_path(info, version, '<namespace>')}/{name}"
        )
    return ResourcePath(
        kind=info, version=version, namespace=namespace, name=name, subresource=subresource
    )


def collection_path(
    info: KindInfo, version: str | None = None, namespace: str | None = None
) -> str:
    """The URL of a kind's collection, in ``namespace`` if given (and the kind is namespaced)."""
    version = version or info.preferred_version
    root = f"/api/{version}" if not info.group else f"/apis/{info.group}/{version}"
    if namespace and info.namespaced:
        return f"{root}/namespaces/{namespace}/{info.plural}"
    return f"{root}/{info.plural}"


def object_path(info: KindInfo, name: str, namespace: str | None = None) -> str:
    return f"{collection_path(info, None, namespace)}/{name}"
