"""L4 authorization policies as ztunnel holds and matches them (reference 3.3 and 4.2)."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.model import IPAddress

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


class Scope(enum.Enum):
    GLOBAL = "GLOBAL"  # every workload in the mesh (policies in the root namespace)
    NAMESPACE = "NAMESPACE"  # every workload in the policy's namespace
    WORKLOAD_SELECTOR = "WORKLOAD_SELECTOR"  # only workloads that list the policy by name


class Action(enum.Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFacts:
    """What L4 authorization may look at: addresses, the destination port and the peer identity.

    ``dst_port`` is the port the application is reached on (the target port, not the service
    port) and ``dst_ip`` the destination pod's IP (reference 4.2). ``src_identity`` is None for
    plaintext: such a connection has no principal, namespace or service account.
    """

    src_ip: IPAddress
    src_identity: Identity | None
    dst_ip: IPAddress
    dst_port: int


class StringMatchKind(enum.Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    PRESENCE = "presence"  # any non-empty value


@dataclass(frozen=True, slots=True, kw_only=True)
class StringMatch:
    kind: StringMatchKind
    value: str = ""

    @classmethod
    def exact(cls, value: str) -> StringMatch:
        return cls(kind=StringMatchKind.EXACT, value=value)

    @classmethod
    def prefix(cls, value: str) -> StringMatch:
        return cls(kind=StringMatchKind.PREFIX, value=value)

    @classmethod
    def suffix(cls, value: str) -> StringMatch:
        return cls(kind=StringMatchKind.SUFFIX, value=value)

    @classmethod
    def presence(cls) -> StringMatch:
        return cls(kind=StringMatchKind.PRESENCE)

    @classmethod
    def from_pattern(cls, pattern: str) -> StringMatch:
        """Istio's syntax: ``*`` presence, ``*x`` suffix, ``x*`` prefix, else exact."""
        if pattern == "*":
            return cls.presence()
        if pattern.startswith("*"):
            return cls.suffix(pattern[1:])
        if pattern.endswith("*"):
            return cls.prefix(pattern[:-1])
        return cls.exact(pattern)

    def matches(self, text: str) -> bool:
        kind = self.kind
        if kind is StringMatchKind.EXACT:
            return text == self.value
        if kind is StringMatchKind.PREFIX:
            return text.startswith(self.value)
        if kind is StringMatchKind.SUFFIX:
            return text.endswith(self.value)
        return text != ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAccountMatch:
    namespace: str
    service_account: str

    def matches(self, identity: Identity | None) -> bool:
        return (
            identity is not None
            and identity.namespace == self.namespace
            and identity.service_account == self.service_account
        )


def _principal_matches(pattern: StringMatch, identity: Identity | None) -> bool:
    # Principals are compared without "spiffe://" (reference 4.2, istio/ztunnel#1901); a
    # plaintext peer has no principal, so no positive pattern matches it.
    return identity is not None and pattern.matches(identity.principal)


def _namespace_matches(pattern: StringMatch, identity: Identity | None) -> bool:
    # The namespace comes from the peer's SPIFFE identity, never from an IP lookup.
    return identity is not None and pattern.matches(identity.namespace)


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Every populated field must hold; a positive field needs one value to match, a ``not_``
    field needs none to match (reference 4.2)."""

    namespaces: tuple[StringMatch, ...] = ()
    not_namespaces: tuple[StringMatch, ...] = ()
    principals: tuple[StringMatch, ...] = ()
    not_principals: tuple[StringMatch, ...] = ()
    source_ips: tuple[IPNetwork, ...] = ()
    not_source_ips: tuple[IPNetwork, ...] = ()
    destination_ips: tuple[IPNetwork, ...] = ()
    not_destination_ips: tuple[IPNetwork, ...] = ()
    destination_ports: frozenset[int] = frozenset()
    not_destination_ports: frozenset[int] = frozenset()
    service_accounts: tuple[ServiceAccountMatch, ...] = ()
    not_service_accounts: tuple[ServiceAccountMatch, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.namespaces
            or self.not_namespaces
            or self.principals
            or self.not_principals
            or self.source_ips
            or self.not_source_ips
            or self.destination_ips
            or self.not_destination_ips
            or self.destination_ports
            or self.not_destination_ports
            or self.service_accounts
            or self.not_service_accounts
        )

    def applies_to(self, conn: ConnectionFacts) -> bool:
        identity = conn.src_identity
        return (
            _ports(self.destination_ports, self.not_destination_ports, conn.dst_port)
            and _ips(self.destination_ips, self.not_destination_ips, conn.dst_ip)
            and _ips(self.source_ips, self.not_source_ips, conn.src_ip)
            and _both(
                [m.matches(identity) for m in self.service_accounts],
                [m.matches(identity) for m in self.not_service_accounts],
            )
            and _both(
                [_principal_matches(m, identity) for m in self.principals],
                [_principal_matches(m, identity) for m in self.not_principals],
            )
            and _both(
                [_namespace_matches(m, identity) for m in self.namespaces],
                [_namespace_matches(m, identity) for m in self.not_namespaces],
            )
        )


def _both(positive: list[bool], negative: list[bool]) -> bool:
    """An unset side holds; a set positive side needs a hit, a set negative side needs none."""
    return (not positive or any(positive)) and not any(negative)


def _ports(positive: frozenset[int], negative: frozenset[int], port: int) -> bool:
    return (not positive or port in positive) and port not in negative


def _ips(positive: tuple[IPNetwork, ...], negative: tuple[IPNetwork, ...], ip: IPAddress) -> bool:
    # `ip in net` is False across families, which is what a CIDR of the other family means.
    return (not positive or any(ip in net for net in positive)) and not any(
        ip in net for net in negative
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Clause:
    """Any one match may hold (OR). Empty matches are skipped; a clause with no matches holds."""

    matches: tuple[Match, ...] = ()

    def applies_to(self, conn: ConnectionFacts) -> bool:
        if not self.matches:
            return True
        # An empty Match is what an L7-only from/to/when becomes; it must never match, or a
        # DENY meant for HTTP attributes would deny everything (reference 4.3).
        return any(not m.is_empty and m.applies_to(conn) for m in self.matches)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Every clause must hold (AND); a rule with no clauses matches every connection."""

    clauses: tuple[Clause, ...] = ()

    def applies_to(self, conn: ConnectionFacts) -> bool:
        return all(clause.applies_to(conn) for clause in self.clauses)


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """One policy. It matches when any rule does; with no rules it matches nothing."""

    name: str
    namespace: str
    scope: Scope
    action: Action
    rules: tuple[Rule, ...] = ()
    dry_run: bool = False
    # Set on the fail-closed stand-in for a policy that could not be parsed (see xds_convert).
    conversion_error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def applies_to(self, conn: ConnectionFacts) -> bool:
        return any(rule.applies_to(conn) for rule in self.rules)
