"""security.istio.io: AuthorizationPolicy, PeerAuthentication, RequestAuthentication."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.istio_common import (
    Glob,
    PolicyTargetReference,
    WorkloadSelector,
    check_targets,
    glob_error,
)
from ambientmesh.resources.modeling import (
    Duration,
    HeaderName,
    IPOrCIDR,
    Model,
    NonEmpty,
    PortKey,
    PortString,
    Problems,
    one_of,
    rule,
)
from ambientmesh.resources.resource import Resource

# ----------------------------------------------------------------------------- value rules


def _principal_error(value: str) -> str | None:
    """``<trust-domain>/ns/<namespace>/sa/<service-account>``, or a ``*`` prefix/suffix glob."""
    if value.startswith("spiffe://"):
        # Istio compares principals without the scheme, so a value with it never matches.
        return invalid(
            value,
            'drop the "spiffe://" prefix: principals are written '
            "<trust-domain>/ns/<namespace>/sa/<service-account> and never match with it",
        )
    glob = glob_error(value)
    if glob is not None or "*" in value:
        return glob
    parts = value.split("/")
    if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa" or not all(parts):
        return invalid(
            value,
            "must have the form <trust-domain>/ns/<namespace>/sa/<service-account>, "
            "or use '*' as a prefix or suffix",
        )
    return None


def _path_error(value: str) -> str | None:
    """A path glob, or a template whose ``{*}`` is one segment and ``{**}`` the rest (last)."""
    if "{" not in value and "}" not in value:
        return glob_error(value)
    segments = value.split("/")
    for position, segment in enumerate(segments):
        if segment == "{**}" and position != len(segments) - 1:
            return invalid(value, "{**} must be the last segment of a path template")
        if segment not in ("{*}", "{**}") and any(char in segment for char in "*{}"):
            return invalid(
                value,
                "in a path template, '*', '{' and '}' may only appear as {*} or {**} segments",
            )
    return None


def _service_account_error(value: str) -> str | None:
    if "*" in value:
        return invalid(value, "wildcards are not supported in serviceAccounts")
    parts = value.split("/")
    if len(parts) > 2 or not all(parts):
        return invalid(value, "must be <namespace>/<service-account> or <service-account>")
    return None


Principal = Annotated[str, rule(_principal_error)]
PathGlob = Annotated[str, rule(_path_error)]
ServiceAccountRef = Annotated[str, rule(_service_account_error)]

# ----------------------------------------------------------------------------- AuthorizationPolicy

MAX_SERVICE_ACCOUNTS = 16


class Source(Model):
    principals: list[Principal] | None = None
    not_principals: list[Principal] | None = None
    request_principals: list[Glob] | None = None
    not_request_principals: list[Glob] | None = None
    namespaces: list[Glob] | None = None
    not_namespaces: list[Glob] | None = None
    service_accounts: list[ServiceAccountRef] | None = None
    not_service_accounts: list[ServiceAccountRef] | None = None
    ip_blocks: list[IPOrCIDR] | None = None
    not_ip_blocks: list[IPOrCIDR] | None = None
    remote_ip_blocks: list[IPOrCIDR] | None = None
    not_remote_ip_blocks: list[IPOrCIDR] | None = None
    trust_domains: list[str] | None = None
    not_trust_domains: list[str] | None = None

    @model_validator(mode="after")
    def _rules(self) -> Source:
        problems = Problems()
        accounts = [*(self.service_accounts or []), *(self.not_service_accounts or [])]
        identities = (self.principals, self.not_principals, self.namespaces, self.not_namespaces)
        if accounts and any(identities):
            problems.add(
                "serviceAccounts" if self.service_accounts else "notServiceAccounts",
                "may not be combined with principals, notPrincipals, namespaces or notNamespaces",
            )
        for name, values in (
            ("serviceAccounts", self.service_accounts),
            ("notServiceAccounts", self.not_service_accounts),
        ):
            if values is not None and len(values) > MAX_SERVICE_ACCOUNTS:
                problems.add(name, f"must have at most {MAX_SERVICE_ACCOUNTS} items")
        problems.raise_if_any()
        return self


class Operation(Model):
    hosts: list[Glob] | None = None
    not_hosts: list[Glob] | None = None
    ports: list[PortString] | None = None
    not_ports: list[PortString] | None = None
    methods: list[Glob] | None = None
    not_methods: list[Glob] | None = None
    paths: list[PathGlob] | None = None
    not_paths: list[PathGlob] | None = None


class RuleFrom(Model):
    source: Source | None = None

    @model_validator(mode="after")
    def _set(self) -> RuleFrom:
        problems = Problems()
        if self.source is None or not self.source.model_fields_set:
            problems.add("source", "required value: an empty source would match nothing usefully")
        problems.raise_if_any()
        return self


class RuleTo(Model):
    operation: Operation | None = None

    @model_validator(mode="after")
    def _set(self) -> RuleTo:
        problems = Problems()
        if self.operation is None or not self.operation.model_fields_set:
            problems.add(
                "operation", "required value: an empty operation would match nothing usefully"
            )
        problems.raise_if_any()
        return self


_BRACKETED = re.compile(r"(request\.headers|request\.auth\.claims)\[(.+)\]")
_PLAIN_KEYS = {
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "destination.ip",
    "destination.port",
    "connection.sni",
}


class Condition(Model):
    key: NonEmpty
    values: list[str] | None = None
    not_values: list[str] | None = None

    @model_validator(mode="after")
    def _rules(self) -> Condition:
        problems = Problems()
        known = (
            self.key in _PLAIN_KEYS
            or _BRACKETED.fullmatch(self.key)
            or self.key.startswith("experimental.envoy.filters.")
        )
        if not known:
            problems.add(
                "key", invalid(self.key, "unknown attribute; see Istio's authorization conditions")
            )
        if not self.values and not self.not_values:
            problems.add("values", "at least one of values or notValues must be set")
        for name, values in (("values", self.values), ("notValues", self.not_values)):
            for position, value in enumerate(values or []):
                problems.check(f"{name}[{position}]", _condition_value_error(self.key, value))
        problems.raise_if_any()
        return self


def _condition_value_error(key: str, value: str) -> str | None:
    if key in ("source.ip", "remote.ip", "destination.ip"):
        return common.ip_or_cidr_error(value)
    if key == "destination.port" and (not value.isdigit() or int(value) > 65535):
        return invalid(value, "must be a port number between 0 and 65535")
    return None


class Rule(Model):
    from_: list[RuleFrom] | None = Field(default=None, alias="from")
    to: list[RuleTo] | None = None
    when: list[Condition] | None = None


class ExtensionProvider(Model):
    name: NonEmpty


Action = Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"]


class AuthorizationPolicySpec(Model):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = None
    rules: list[Rule] | None = Field(default=None, max_length=512)
    action: Action | None = None
    provider: ExtensionProvider | None = None

    @model_validator(mode="after")
    def _rules(self) -> AuthorizationPolicySpec:
        problems = Problems()
        check_targets(
            problems,
            selector=self.selector,
            target_ref=self.target_ref,
            target_refs=self.target_refs,
        )
        if self.action == "CUSTOM" and self.provider is None:
            problems.add("provider", "required value when action is CUSTOM")
        if self.action != "CUSTOM" and self.provider is not None:
            problems.add("provider", "may only be set when action is CUSTOM")
        problems.raise_if_any()
        return self


class AuthorizationPolicy(Resource):
    spec: AuthorizationPolicySpec = AuthorizationPolicySpec()


# ----------------------------------------------------------------------------- PeerAuthentication

MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class MutualTLS(Model):
    mode: MtlsMode | None = None


class PeerAuthenticationSpec(Model):
    selector: WorkloadSelector | None = None
    mtls: MutualTLS | None = None
    port_level_mtls: dict[PortKey, MutualTLS] | None = None

    @model_validator(mode="after")
    def _rules(self) -> PeerAuthenticationSpec:
        problems = Problems()
        if self.port_level_mtls and self.selector is None:
            # Port-level settings are keyed by workload port, so they need selected workloads.
            problems.add(
                "portLevelMtls",
                "requires a selector: port-level mTLS applies to selected workloads",
            )
        problems.raise_if_any()
        return self


class PeerAuthentication(Resource):
    spec: PeerAuthenticationSpec = PeerAuthenticationSpec()


# ----------------------------------------------------------------------------- RequestAuthn


def _jwks_uri_error(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for an out-of-range port
    except ValueError:
        return invalid(value, "must be an http:// or https:// URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return invalid(value, "must be an http:// or https:// URL")
    return None


def _jwks_error(value: str) -> str | None:
    try:
        document = json.loads(value)
    except ValueError as error:
        return f"must be a JSON Web Key Set: {error}"
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return 'must be a JSON Web Key Set: an object with a "keys" list'
    return None


class JWTHeader(Model):
    name: HeaderName
    prefix: str | None = None


class ClaimToHeader(Model):
    header: HeaderName
    claim: NonEmpty


class JWTRule(Model):
    issuer: NonEmpty
    audiences: list[str] | None = None
    jwks_uri: Annotated[str, rule(_jwks_uri_error)] | None = None
    jwks: Annotated[str, rule(_jwks_error)] | None = None
    from_headers: list[JWTHeader] | None = None
    from_params: list[NonEmpty] | None = None
    from_cookies: list[NonEmpty] | None = None
    output_payload_to_header: str | None = None
    forward_original_token: bool | None = None
    output_claim_to_headers: list[ClaimToHeader] | None = None
    timeout: Duration | None = None
    space_delimited_claims: list[str] | None = None

    @model_validator(mode="after")
    def _keys(self) -> JWTRule:
        problems = Problems()
        # Neither is fine: the keys are then discovered through the issuer's OpenID metadata.
        one_of(
            problems,
            "jwks",
            {"jwks": self.jwks is not None, "jwksUri": self.jwks_uri is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


class RequestAuthenticationSpec(Model):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = None
    jwt_rules: list[JWTRule] | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _rules(self) -> RequestAuthenticationSpec:
        problems = Problems()
        check_targets(
            problems,
            selector=self.selector,
            target_ref=self.target_ref,
            target_refs=self.target_refs,
        )
        problems.raise_if_any()
        return self


class RequestAuthentication(Resource):
    spec: RequestAuthenticationSpec = RequestAuthenticationSpec()
