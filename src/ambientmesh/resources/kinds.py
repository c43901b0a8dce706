"""The registry of resource kinds ambientmesh serves: groups, versions, plurals, scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput


@dataclass(frozen=True, slots=True, kw_only=True)
class KindInfo:
    """One kind as the API serves it. ``versions`` lists served versions, preferred first."""

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    has_status: bool = True

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    @property
    def api_version(self) -> str:
        """The preferred ``apiVersion`` string, e.g. ``security.istio.io/v1``."""
        return self.api_version_for(self.preferred_version)

    def api_version_for(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified_plural(self) -> str:
        """``plural.group`` as kubectl prints it (just ``plural`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _kind(
    group: str,
    versions: Iterable[str],
    kind: str,
    plural: str,
    *short_names: str,
    namespaced: bool = True,
    has_status: bool = True,
) -> KindInfo:
    return KindInfo(
        group=group,
        versions=tuple(versions),
        kind=kind,
        plural=plural,
        short_names=short_names,
        namespaced=namespaced,
        has_status=has_status,
    )


GATEWAY = "gateway.networking.k8s.io"
ISTIO_SECURITY = "security.istio.io"
ISTIO_NETWORKING = "networking.istio.io"
ISTIO_TELEMETRY = "telemetry.istio.io"

ALL_KINDS: tuple[KindInfo, ...] = (
    _kind("", ["v1"], "Namespace", "namespaces", "ns", namespaced=False),
    _kind("", ["v1"], "Node", "nodes", "no", namespaced=False),
    _kind("", ["v1"], "Pod", "pods", "po"),
    _kind("", ["v1"], "Service", "services", "svc"),
    _kind("", ["v1"], "ServiceAccount", "serviceaccounts", "sa", has_status=False),
    _kind("apps", ["v1"], "Deployment", "deployments", "deploy"),
    _kind("batch", ["v1"], "Job", "jobs"),
    _kind(GATEWAY, ["v1", "v1beta1"], "GatewayClass", "gatewayclasses", "gc", namespaced=False),
    _kind(GATEWAY, ["v1", "v1beta1"], "Gateway", "gateways", "gtw"),
    _kind(GATEWAY, ["v1", "v1beta1"], "HTTPRoute", "httproutes"),
    _kind(GATEWAY, ["v1"], "GRPCRoute", "grpcroutes"),
    _kind(GATEWAY, ["v1alpha2"], "TCPRoute", "tcproutes"),
    _kind(ISTIO_SECURITY, ["v1", "v1beta1"], "AuthorizationPolicy", "authorizationpolicies", "ap"),
    _kind(ISTIO_SECURITY, ["v1", "v1beta1"], "PeerAuthentication", "peerauthentications", "pa"),
    _kind(
        ISTIO_SECURITY, ["v1", "v1beta1"], "RequestAuthentication", "requestauthentications", "ra"
    ),
    _kind(
        ISTIO_NETWORKING, ["v1", "v1beta1", "v1alpha3"], "VirtualService", "virtualservices", "vs"
    ),
    _kind(
        ISTIO_NETWORKING, ["v1", "v1beta1", "v1alpha3"], "DestinationRule", "destinationrules", "dr"
    ),
    _kind(ISTIO_NETWORKING, ["v1", "v1beta1", "v1alpha3"], "ServiceEntry", "serviceentries", "se"),
    _kind(ISTIO_TELEMETRY, ["v1", "v1alpha1"], "Telemetry", "telemetries", "telemetry"),
)

_BY_GROUP_KIND = {(info.group, info.kind): info for info in ALL_KINDS}
_BY_GROUP_PLURAL = {(info.group, info.plural): info for info in ALL_KINDS}


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` -> (``apps``, ``v1``); ``v1`` -> (``""``, ``v1``)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def lookup(api_version: str, kind: str) -> KindInfo:
    """The kind for an object's ``apiVersion`` and ``kind``; InvalidInput if we do not serve it."""
    group, version = split_api_version(api_version)
    info = _BY_GROUP_KIND.get((group, kind))
    if info is None:
        raise InvalidInput(f'no kind "{kind}" is registered for apiVersion "{api_version}"')
    if version not in info.versions:
        served = ", ".join(info.api_version_for(v) for v in info.versions)
        raise InvalidInput(
            f'kind "{kind}" is not served at apiVersion "{api_version}"; use one of: {served}'
        )
    return info


def by_kind(kind: str) -> KindInfo:
    """The kind with this ``kind`` name (unique across the groups we serve)."""
    for info in ALL_KINDS:
        if info.kind == kind:
            return info
    raise InvalidInput(f'no kind "{kind}" is registered')


def by_group_plural(group: str, plural: str) -> KindInfo:
    """The kind behind an API path segment; InvalidInput if there is none."""
    info = _BY_GROUP_PLURAL.get((group, plural))
    if info is None:
        where = f"group {group!r}" if group else "the core group"
        raise InvalidInput(f'the server has no resource type "{plural}" in {where}')
    return info


def resolve(name: str) -> KindInfo:
    """Resolve a name typed on the command line: plural, singular, short name or Kind,
    optionally qualified with its group as kubectl allows (``gateways.gateway.networking.k8s.io``).
    """
    wanted, _, group = name.partition(".")
    lowered = wanted.lower()
    matches = [
        info
        for info in ALL_KINDS
        if lowered in (info.plural, info.singular, *info.short_names)
        and (not group or info.group == group)
    ]
    if not matches:
        raise InvalidInput(f'the server doesn\'t have a resource type "{name}"')
    if len(matches) > 1:
        options = ", ".join(info.qualified_plural for info in matches)
        raise InvalidInput(f'"{name}" is ambiguous; use one of: {options}')
    return matches[0]
