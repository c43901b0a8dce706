"""PeerAuthentication -> ztunnel DENY policies, as istiod's ambient converter does.

Reference: istio-ambient.md §4.5, l7-semantics.md §5.1. ztunnel never sees PeerAuthentication:

- While any PeerAuthentication exists, the static policy ``<root>/istio_converted_static_strict``
  (DENY, WORKLOAD_SELECTOR, "no peer principal") is published; every workload whose
  effective mode is STRICT lists it.
- Effective mode: workload policy over namespace policy over mesh policy; UNSET inherits;
  the oldest policy wins at one level; DISABLE is ignored (ambient always speaks mTLS over
  HBONE), so it behaves like PERMISSIVE.
- A selector policy with ``portLevelMtls`` becomes ``converted_peer_authentication_<name>``
  in its namespace: with STRICT at the top, deny plaintext except on the PERMISSIVE ports;
  otherwise deny plaintext only on the STRICT ports. Workloads it selects list it instead
  of the static policy. Selector policies in the root namespace are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.empty_pb2 import Empty

from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import Labels, PeerAuthFacts, selector_matches
from ambientmesh.proto import authorization_pb2 as pb

STATIC_STRICT_NAME = "istio_converted_static_strict"
CONVERTED_PREFIX = "converted_peer_authentication_"

_STRICT = "STRICT"
_PERMISSIVE = "PERMISSIVE"


def static_strict(config: MeshConfig) -> pb.Authorization:
    return pb.Authorization(
        name=STATIC_STRICT_NAME,
        namespace=config.root_namespace,
        scope=pb.WORKLOAD_SELECTOR,
        action=pb.DENY,
        rules=[pb.Rule(clauses=[pb.Clause(matches=[_plaintext()])])],
    )


def _plaintext(*, ports: Iterable[int] = (), not_ports: Iterable[int] = ()) -> pb.Match:
    """Matches connections without a peer identity (plaintext), optionally on some ports."""
    return pb.Match(
        not_principals=[pb.StringMatch(presence=Empty())],
        destination_ports=ports,
        not_destination_ports=not_ports,
    )


def _effective(mode: str) -> str | None:
    """None for UNSET (inherit); DISABLE counts as PERMISSIVE in ambient."""
    if mode == "UNSET":
        return None
    return _STRICT if mode == _STRICT else _PERMISSIVE


def _oldest(policies: Iterable[PeerAuthFacts]) -> PeerAuthFacts | None:
    return min(policies, key=lambda p: (p.meta.created, p.meta.name), default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAuthentications:
    """The PeerAuthentications that bear on one namespace."""

    mesh: PeerAuthFacts | None
    namespace: PeerAuthFacts | None
    selecting: tuple[PeerAuthFacts, ...]  # selector policies of the namespace (any match)

    def for_workload(self, labels: Labels) -> PeerAuthFacts | None:
        return _oldest(p for p in self.selecting if selector_matches(p.selector, labels))

    def inherited_mode(self) -> str:
        for policy in (self.namespace, self.mesh):
            mode = _effective(policy.mode) if policy is not None else None
            if mode is not None:
                return mode
        return _PERMISSIVE


def scoped(
    policies: Iterable[PeerAuthFacts], namespace: str, config: MeshConfig
) -> PeerAuthentications:
    mesh = [p for p in policies if p.meta.namespace == config.root_namespace and p.selector is None]
    return PeerAuthentications(
        mesh=_oldest(mesh),
        namespace=_oldest(
            p for p in policies if p.meta.namespace == namespace and p.selector is None
        ),
        selecting=tuple(
            p
            for p in policies
            if p.meta.namespace == namespace
            and p.selector is not None
            and namespace != config.root_namespace
        ),
    )


def convert(policy: PeerAuthFacts, inherited_mode: str) -> pb.Authorization | None:
    """The DENY policy for a selector PeerAuthentication with port-level settings, if any."""
    if policy.selector is None or not policy.port_modes:
        return None
    top = _effective(policy.mode) or inherited_mode
    if top == _STRICT:
        permissive = sorted(p for p, m in policy.port_modes.items() if _effective(m) == _PERMISSIVE)
        match = _plaintext(not_ports=permissive)
    else:
        strict = sorted(p for p, m in policy.port_modes.items() if _effective(m) == _STRICT)
        if not strict:
            return None
        match = _plaintext(ports=strict)
    return pb.Authorization(
        name=CONVERTED_PREFIX + policy.meta.name,
        namespace=policy.meta.namespace,
        scope=pb.WORKLOAD_SELECTOR,
        action=pb.DENY,
        rules=[pb.Rule(clauses=[pb.Clause(matches=[match])])],
    )


def policy_for_workload(
    labels: Labels, scope: PeerAuthentications, config: MeshConfig, any_exist: bool
) -> str | None:
    """The name (``ns/name``) of the PeerAuthentication-derived policy this workload lists."""
    if not any_exist:
        return None
    own = scope.for_workload(labels)
    inherited = scope.inherited_mode()
    if own is not None and convert(own, inherited) is not None:
        return f"{own.meta.namespace}/{CONVERTED_PREFIX}{own.meta.name}"
    mode = (_effective(own.mode) if own is not None else None) or inherited
    if mode == _STRICT:
        return f"{config.root_namespace}/{STATIC_STRICT_NAME}"
    return None
