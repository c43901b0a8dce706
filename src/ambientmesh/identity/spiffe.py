"""SPIFFE identities: Istio's workload form ``spiffe://<td>/ns/<ns>/sa/<sa>`` and our node form."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ambientmesh.errors import IdentityError

SCHEME = "spiffe://"

# SPIFFE-ID spec §2.1: a trust domain is lowercase letters, digits, '.', '-' and '_'.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
# SPIFFE-ID spec §2.2: path segments are letters, digits, '.', '-' and '_', never '.' or '..'.
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_MAX_TRUST_DOMAIN = 255
_MAX_URI = 2048


def check_trust_domain(trust_domain: str) -> str:
    """Return ``trust_domain`` if it is a valid SPIFFE trust domain, else raise IdentityError."""
    if not trust_domain:
        raise IdentityError("trust domain is empty")
    if len(trust_domain) > _MAX_TRUST_DOMAIN:
        raise IdentityError(f"trust domain is longer than {_MAX_TRUST_DOMAIN} characters")
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise IdentityError(
            f"trust domain {trust_domain!r} may hold only lowercase letters, digits, '.', '-', '_'"
        )
    return trust_domain


def _check_segment(what: str, value: str) -> None:
    if not value:
        raise IdentityError(f"{what} is empty")
    if value in (".", "..") or not _SEGMENT.fullmatch(value):
        raise IdentityError(
            f"{what} {value!r} may hold only letters, digits, '.', '-', '_' (and is not . or ..)"
        )


def _split(uri: str) -> tuple[str, list[str]]:
    """Split a SPIFFE URI into its trust domain and path segments; checks shape only."""
    if not isinstance(uri, str):
        raise IdentityError(f"SPIFFE ID must be a string, not {type(uri).__name__}")
    if len(uri) > _MAX_URI:
        raise IdentityError(f"SPIFFE ID is longer than {_MAX_URI} characters")
    if not uri.startswith(SCHEME):
        raise IdentityError(f"{uri!r} is not a SPIFFE ID: it must start with {SCHEME!r}")
    rest = uri[len(SCHEME) :]
    if any(mark in rest for mark in "?#%@:"):
        raise IdentityError(f"{uri!r} is not a SPIFFE ID: no query, fragment, port or escapes")
    trust_domain, _, path = rest.partition("/")
    check_trust_domain(trust_domain)
    return trust_domain, path.split("/") if path else []


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Identity:
    """A workload identity: a service account in a namespace of a trust domain."""

    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        check_trust_domain(self.trust_domain)
        _check_segment("namespace", self.namespace)
        _check_segment("service account", self.service_account)

    @classmethod
    def parse(cls, uri: str) -> Identity:
        """Parse exactly ``spiffe://<td>/ns/<ns>/sa/<sa>`` (Istio's only workload form)."""
        trust_domain, segments = _split(uri)
        if len(segments) != 4 or segments[0] != "ns" or segments[2] != "sa":
            raise IdentityError(
                f"{uri!r} is not a workload identity: expected spiffe://<trust-domain>/ns/"
                "<namespace>/sa/<service-account>"
            )
        return cls(trust_domain=trust_domain, namespace=segments[1], service_account=segments[3])

    def __str__(self) -> str:
        return f"{SCHEME}{self.principal}"

    @property
    def principal(self) -> str:
        """The form AuthorizationPolicy ``principals`` use: ``<td>/ns/<ns>/sa/<sa>``."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NodeIdentity:
    """A node's identity, ``spiffe://<td>/ambientmesh/node/<node>``.

    Deliberately not of the workload form, so a node credential can never pass as a workload.
    """

    trust_domain: str
    node: str

    def __post_init__(self) -> None:
        check_trust_domain(self.trust_domain)
        _check_segment("node name", self.node)

    @classmethod
    def parse(cls, uri: str) -> NodeIdentity:
        trust_domain, segments = _split(uri)
        if len(segments) != 3 or segments[:2] != ["ambientmesh", "node"]:
            raise IdentityError(
                f"{uri!r} is not a node identity: expected spiffe://<trust-domain>/ambientmesh/"
                "node/<node-name>"
            )
        return cls(trust_domain=trust_domain, node=segments[2])

    def __str__(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ambientmesh/node/{self.node}"


def parse_any(uri: str) -> Identity | NodeIdentity:
    """Parse either form; the error names both when ``uri`` is neither."""
    try:
        return Identity.parse(uri)
    except IdentityError:
        pass
    try:
        return NodeIdentity.parse(uri)
    except IdentityError:
        _split(uri)  # a malformed URI gets the specific message
        raise IdentityError(
            f"{uri!r} is neither a workload identity (spiffe://<td>/ns/<ns>/sa/<sa>) nor a node "
            "identity (spiffe://<td>/ambientmesh/node/<node>)"
        ) from None
