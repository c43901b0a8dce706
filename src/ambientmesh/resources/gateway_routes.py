"""gateway.networking.k8s.io HTTPRoute, GRPCRoute and TCPRoute, with Gateway API's limits."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ambientmesh.resources import common
from ambientmesh.resources.gateway import (
    BackendRef,
    Hostname,
    ParentReference,
    SectionName,
)
from ambientmesh.resources.gateway_filters import (
    MAX_LIST,
    HTTPRouteFilter,
    Method,
    check_filters,
)
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.modeling import (
    GatewayDuration,
    HeaderName,
    Model,
    NonNegative,
    Problems,
    within,
)
from ambientmesh.resources.resource import Resource

MAX_RULES = 16
MAX_MATCHES_PER_RULE = 64
MAX_MATCHES_PER_ROUTE = 128

# ----------------------------------------------------------------------------- matches

_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F", "#")


def path_match_error(kind: str, value: str) -> str | None:
    """Gateway API path rules: Exact and PathPrefix values are normalised absolute paths."""
    if kind == "RegularExpression":
        return common.regex_error(value)
    if not value.startswith("/"):
        return invalid(value, "must be an absolute path starting with '/'")
    for part in _BAD_PATH_PARTS:
        if part in value:
            return invalid(value, f"must not contain {part!r}")
    if value.endswith(("/..", "/.")):
        return invalid(value, "must not end with '/.' or '/..'")
    return None


class HTTPPathMatch(Model):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] | None = None
    value: Annotated[str, Field(max_length=1024)] | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPPathMatch:
        problems = Problems()
        problems.check("value", path_match_error(self.type or "PathPrefix", self.value or "/"))
        problems.raise_if_any()
        return self


class HeaderMatch(Model):
    type: Literal["Exact", "RegularExpression"] | None = None
    name: HeaderName
    value: Annotated[str, Field(max_length=4096)]

    @model_validator(mode="after")
    def _rules(self) -> HeaderMatch:
        problems = Problems()
        if self.type == "RegularExpression":
            problems.check("value", common.regex_error(self.value))
        problems.raise_if_any()
        return self


def check_unique_names(
    problems: Problems, path: str, matches: list[HeaderMatch] | None, *, fold: bool
) -> None:
    seen: set[str] = set()
    for position, match in enumerate(matches or []):
        name = match.name.lower() if fold else match.name
        if name in seen:
            problems.add(f"{path}[{position}].name", f"duplicate name {match.name!r}")
        seen.add(name)


class HTTPRouteMatch(Model):
    path: HTTPPathMatch | None = None
    headers: list[HeaderMatch] | None = Field(default=None, max_length=MAX_LIST)
    query_params: list[HeaderMatch] | None = Field(default=None, max_length=MAX_LIST)
    method: Method | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRouteMatch:
        problems = Problems()
        check_unique_names(problems, "headers", self.headers, fold=True)
        check_unique_names(problems, "queryParams", self.query_params, fold=False)
        problems.raise_if_any()
        return self


# ----------------------------------------------------------------------------- HTTPRoute


class HTTPBackendRef(BackendRef):
    filters: list[HTTPRouteFilter] | None = Field(default=None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _filters(self) -> HTTPBackendRef:
        problems = Problems()
        check_filters(problems, "filters", self.filters)
        problems.raise_if_any()
        return self


class HTTPRouteTimeouts(Model):
    request: GatewayDuration | None = None
    backend_request: GatewayDuration | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRouteTimeouts:
        problems = Problems()
        if self.request and self.backend_request:
            request = common.parse_gateway_duration(self.request)
            backend = common.parse_gateway_duration(self.backend_request)
            if request and backend > request:  # a request timeout of 0s means "no timeout"
                problems.add(
                    "backendRequest",
                    f"{self.backend_request} must not be longer than request {self.request}",
                )
        problems.raise_if_any()
        return self


class HTTPRouteRetry(Model):
    codes: list[Annotated[int, within(400, 599)]] | None = None
    attempts: NonNegative | None = None
    backoff: GatewayDuration | None = None


class SessionPersistence(Model):
    session_name: Annotated[str, Field(max_length=128)] | None = None
    absolute_timeout: GatewayDuration | None = None
    idle_timeout: GatewayDuration | None = None
    type: Literal["Cookie", "Header"] | None = None
    cookie_config: dict[str, Literal["Permanent", "Session"]] | None = None


class HTTPRouteRule(Model):
    name: SectionName | None = None
    matches: list[HTTPRouteMatch] | None = Field(default=None, max_length=MAX_MATCHES_PER_RULE)
    filters: list[HTTPRouteFilter] | None = Field(default=None, max_length=MAX_LIST)
    backend_refs: list[HTTPBackendRef] | None = Field(default=None, max_length=MAX_LIST)
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    session_persistence: SessionPersistence | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRouteRule:
        problems = Problems()
        check_filters(problems, "filters", self.filters)
        kinds = {route_filter.type for route_filter in self.filters or []}
        if "RequestRedirect" in kinds and self.backend_refs:
            problems.add("backendRefs", "may not be set together with a RequestRedirect filter")
        if self._uses_prefix_replacement() and not self._has_one_prefix_match():
            problems.add(
                "matches", "ReplacePrefixMatch needs exactly one match, and it must be a PathPrefix"
            )
        problems.raise_if_any()
        return self

    def _uses_prefix_replacement(self) -> bool:
        for route_filter in self.filters or []:
            modifier = route_filter.request_redirect or route_filter.url_rewrite
            if (
                modifier is not None
                and modifier.path is not None
                and modifier.path.type == "ReplacePrefixMatch"
            ):
                return True
        return False

    def _has_one_prefix_match(self) -> bool:
        if not self.matches:
            return True  # the default match is PathPrefix "/"
        if len(self.matches) != 1 or self.matches[0].path is None:
            return False
        return (self.matches[0].path.type or "PathPrefix") == "PathPrefix"


def check_route_limits(problems: Problems, match_counts: list[int]) -> None:
    total = sum(match_counts)
    if total > MAX_MATCHES_PER_ROUTE:
        problems.add(
            "rules",
            f"{total} matches in all rules: a route may have at most {MAX_MATCHES_PER_ROUTE}",
        )


def check_rule_names(problems: Problems, names: list[str | None]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(names):
        if name is not None and name in seen:
            problems.add(f"rules[{position}].name", f"duplicate rule name {name!r}")
        if name is not None:
            seen.add(name)


class HTTPRouteSpec(Model):
    parent_refs: list[ParentReference] | None = Field(default=None, max_length=32)
    hostnames: list[Hostname] | None = Field(default=None, max_length=MAX_LIST)
    rules: list[HTTPRouteRule] | None = Field(default=None, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _rules(self) -> HTTPRouteSpec:
        problems = Problems()
        check_route_limits(problems, [len(rule.matches or [None]) for rule in self.rules or []])
        check_rule_names(problems, [rule.name for rule in self.rules or []])
        problems.raise_if_any()
        return self


class HTTPRoute(Resource):
    spec: HTTPRouteSpec


# ----------------------------------------------------------------------------- GRPCRoute

_GRPC_SERVICE = r"\.?[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*"
_GRPC_METHOD = r"[A-Za-z_][A-Za-z_0-9]*"


class GRPCMethodMatch(Model):
    type: Literal["Exact", "RegularExpression"] | None = None
    service: Annotated[str, Field(max_length=1024)] | None = None
    method: Annotated[str, Field(max_length=1024)] | None = None

    @model_validator(mode="after")
    def _rules(self) -> GRPCMethodMatch:
        problems = Problems()
        if not self.service and not self.method:
            problems.add("", "at least one of service or method must be set")
        for name, value, pattern in (
            ("service", self.service, _GRPC_SERVICE),
            ("method", self.method, _GRPC_METHOD),
        ):
            if value is None:
                continue
            if self.type == "RegularExpression":
                problems.check(name, common.regex_error(value))
            elif not re.fullmatch(pattern, value):
                problems.add(name, invalid(value, f"must be a valid gRPC {name} name"))
        problems.raise_if_any()
        return self


class GRPCRouteMatch(Model):
    method: GRPCMethodMatch | None = None
    headers: list[HeaderMatch] | None = Field(default=None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _rules(self) -> GRPCRouteMatch:
        problems = Problems()
        check_unique_names(problems, "headers", self.headers, fold=True)
        problems.raise_if_any()
        return self


_GRPC_FILTERS = {"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"}


def check_grpc_filters(
    problems: Problems, path: str, filters: list[HTTPRouteFilter] | None
) -> None:
    check_filters(problems, path, filters)
    for position, route_filter in enumerate(filters or []):
        if route_filter.type not in _GRPC_FILTERS:
            problems.add(
                f"{path}[{position}].type", f"{route_filter.type} is not supported on a GRPCRoute"
            )


class GRPCBackendRef(BackendRef):
    filters: list[HTTPRouteFilter] | None = Field(default=None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _filters(self) -> GRPCBackendRef:
        problems = Problems()
        check_grpc_filters(problems, "filters", self.filters)
        problems.raise_if_any()
        return self


class GRPCRouteRule(Model):
    name: SectionName | None = None
    matches: list[GRPCRouteMatch] | None = Field(default=None, max_length=MAX_MATCHES_PER_RULE)
    filters: list[HTTPRouteFilter] | None = Field(default=None, max_length=MAX_LIST)
    backend_refs: list[GRPCBackendRef] | None = Field(default=None, max_length=MAX_LIST)
    session_persistence: SessionPersistence | None = None

    @model_validator(mode="after")
    def _rules(self) -> GRPCRouteRule:
        problems = Problems()
        check_grpc_filters(problems, "filters", self.filters)
        problems.raise_if_any()
        return self


class GRPCRouteSpec(Model):
    parent_refs: list[ParentReference] | None = Field(default=None, max_length=32)
    hostnames: list[Hostname] | None = Field(default=None, max_length=MAX_LIST)
    rules: list[GRPCRouteRule] | None = Field(default=None, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _rules(self) -> GRPCRouteSpec:
        problems = Problems()
        check_route_limits(problems, [len(rule.matches or [None]) for rule in self.rules or []])
        check_rule_names(problems, [rule.name for rule in self.rules or []])
        problems.raise_if_any()
        return self


class GRPCRoute(Resource):
    spec: GRPCRouteSpec


# ----------------------------------------------------------------------------- TCPRoute


class TCPRouteRule(Model):
    name: SectionName | None = None
    backend_refs: list[BackendRef] = Field(min_length=1, max_length=MAX_LIST)


class TCPRouteSpec(Model):
    parent_refs: list[ParentReference] | None = Field(default=None, max_length=32)
    rules: list[TCPRouteRule] = Field(min_length=1, max_length=MAX_RULES)

    @model_validator(mode="after")
    def _rules(self) -> TCPRouteSpec:
        problems = Problems()
        check_rule_names(problems, [rule.name for rule in self.rules])
        problems.raise_if_any()
        return self


class TCPRoute(Resource):
    spec: TCPRouteSpec
