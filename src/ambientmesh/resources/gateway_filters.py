"""Gateway API route filters: header modifiers, redirects, rewrites, mirrors, CORS."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ambientmesh.resources.gateway import (
    BackendObjectReference,
    Group,
    Kind,
    ObjectName,
    PreciseHostname,
)
from ambientmesh.resources.modeling import (
    HeaderName,
    Model,
    NonNegative,
    Port,
    Positive,
    Problems,
    one_of,
    within,
)

MAX_LIST = 16
Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
CorsMethod = Literal[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"
]


class HeaderValue(Model):
    name: HeaderName
    value: Annotated[str, Field(max_length=4096)]


class HeaderFilter(Model):
    set: list[HeaderValue] | None = Field(default=None, max_length=MAX_LIST)
    add: list[HeaderValue] | None = Field(default=None, max_length=MAX_LIST)
    remove: list[HeaderName] | None = Field(default=None, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _rules(self) -> HeaderFilter:
        # One action per header name: a header both set and removed has no defined result.
        problems = Problems()
        seen: dict[str, str] = {}
        for action, names in (
            ("set", [h.name for h in self.set or []]),
            ("add", [h.name for h in self.add or []]),
            ("remove", list(self.remove or [])),
        ):
            for position, name in enumerate(names):
                if name.lower() in seen:
                    problems.add(
                        f"{action}[{position}]",
                        f"header {name!r} already appears in {seen[name.lower()]}",
                    )
                seen[name.lower()] = action
        problems.raise_if_any()
        return self


class PathModifier(Model):
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"]
    replace_full_path: Annotated[str, Field(max_length=1024)] | None = None
    replace_prefix_match: Annotated[str, Field(max_length=1024)] | None = None

    @model_validator(mode="after")
    def _rules(self) -> PathModifier:
        problems = Problems()
        wanted = "replaceFullPath" if self.type == "ReplaceFullPath" else "replacePrefixMatch"
        other = "replacePrefixMatch" if self.type == "ReplaceFullPath" else "replaceFullPath"
        values = {
            "replaceFullPath": self.replace_full_path,
            "replacePrefixMatch": self.replace_prefix_match,
        }
        if values[wanted] is None:
            problems.add(wanted, f"required value when type is {self.type}")
        if values[other] is not None:
            problems.add(other, f"may not be set when type is {self.type}")
        problems.raise_if_any()
        return self


class RequestRedirect(Model):
    scheme: Literal["http", "https"] | None = None
    hostname: PreciseHostname | None = None
    path: PathModifier | None = None
    port: Port | None = None
    status_code: Literal[301, 302, 303, 307, 308] | None = None


class URLRewrite(Model):
    hostname: PreciseHostname | None = None
    path: PathModifier | None = None


class Fraction(Model):
    numerator: NonNegative
    denominator: Positive | None = None

    @model_validator(mode="after")
    def _rules(self) -> Fraction:
        problems = Problems()
        if self.numerator > (self.denominator or 100):
            problems.add("numerator", "must be less than or equal to denominator")
        problems.raise_if_any()
        return self


class RequestMirror(Model):
    backend_ref: BackendObjectReference
    percent: Annotated[int, within(0, 100)] | None = None
    fraction: Fraction | None = None

    @model_validator(mode="after")
    def _rules(self) -> RequestMirror:
        problems = Problems()
        one_of(
            problems,
            "percent",
            {"percent": self.percent is not None, "fraction": self.fraction is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


class CORS(Model):
    allow_origins: list[str] | None = Field(default=None, max_length=64)
    allow_credentials: bool | None = None
    allow_methods: list[CorsMethod] | None = Field(default=None, max_length=9)
    allow_headers: list[str] | None = Field(default=None, max_length=64)
    expose_headers: list[str] | None = Field(default=None, max_length=64)
    max_age: Positive | None = None


class ExtensionRef(Model):
    group: Group
    kind: Kind
    name: ObjectName


FILTER_FIELDS = {
    "RequestHeaderModifier": "request_header_modifier",
    "ResponseHeaderModifier": "response_header_modifier",
    "RequestMirror": "request_mirror",
    "RequestRedirect": "request_redirect",
    "URLRewrite": "url_rewrite",
    "ExtensionRef": "extension_ref",
    "CORS": "cors",
}
_FILTER_ALIASES = {
    "RequestHeaderModifier": "requestHeaderModifier",
    "ResponseHeaderModifier": "responseHeaderModifier",
    "RequestMirror": "requestMirror",
    "RequestRedirect": "requestRedirect",
    "URLRewrite": "urlRewrite",
    "ExtensionRef": "extensionRef",
    "CORS": "cors",
}


class HTTPRouteFilter(Model):
    type: Literal[
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
        "RequestRedirect",
        "URLRewrite",
        "ExtensionRef",
        "CORS",
    ]
    request_header_modifier: HeaderFilter | None = None
    response_header_modifier: HeaderFilter | None = None
    request_mirror: RequestMirror | None = None
    request_redirect: RequestRedirect | None = None
    url_rewrite: URLRewrite | None = Field(default=None, alias="urlRewrite")
    extension_ref: ExtensionRef | None = None
    cors: CORS | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRouteFilter:
        problems = Problems()
        for kind, attribute in FILTER_FIELDS.items():
            present = getattr(self, attribute) is not None
            if kind == self.type and not present:
                problems.add(_FILTER_ALIASES[kind], f"required value when type is {kind}")
            elif kind != self.type and present:
                problems.add(_FILTER_ALIASES[kind], f"may not be set when type is {self.type}")
        problems.raise_if_any()
        return self


# Filters that may appear once per rule; RequestMirror and ExtensionRef may repeat.
_ONCE_PER_RULE = {
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "CORS",
}


def check_filters(problems: Problems, path: str, filters: list[HTTPRouteFilter] | None) -> None:
    seen: set[str] = set()
    for position, route_filter in enumerate(filters or []):
        if route_filter.type in seen and route_filter.type in _ONCE_PER_RULE:
            problems.add(f"{path}[{position}].type", f"{route_filter.type} may appear at most once")
        seen.add(route_filter.type)
    if {"RequestRedirect", "URLRewrite"} <= seen:
        problems.add(path, "RequestRedirect and URLRewrite may not be used in the same rule")
