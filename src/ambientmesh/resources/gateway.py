"""gateway.networking.k8s.io GatewayClass and Gateway, and the references routes share."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.modeling import (
    DNSLabel,
    LabelKey,
    Labels,
    Model,
    Port,
    Problems,
    rule,
    within,
)
from ambientmesh.resources.resource import Resource
from ambientmesh.resources.selectors import label_selector_issues


def _pattern(regex: str, what: str, maximum: int) -> Any:
    compiled = re.compile(regex)

    def check(value: str) -> str | None:
        if len(value) > maximum:
            return invalid(value, f"must be no more than {maximum} characters")
        if not compiled.fullmatch(value):
            return invalid(value, f"must be {what}")
        return None

    return rule(check)


_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
Group = Annotated[
    str,
    _pattern(f"({_SUBDOMAIN})?", "an API group such as gateway.networking.k8s.io or empty", 253),
]
Kind = Annotated[
    str, _pattern(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?", "a kind such as Service", 63)
]
ObjectName = Annotated[str, _pattern(r"[^\x00/]+", "a non-empty object name without '/'", 253)]
SectionName = Annotated[str, _pattern(_SUBDOMAIN, "a lowercase RFC 1123 subdomain", 253)]
Hostname = Annotated[
    str,
    _pattern(
        rf"(\*\.)?{_SUBDOMAIN}",
        "a DNS name, optionally with a leading *. wildcard (no IP addresses)",
        253,
    ),
]
PreciseHostname = Annotated[str, _pattern(_SUBDOMAIN, "a DNS name without wildcards", 253)]
ControllerName = Annotated[
    str,
    _pattern(
        rf"{_SUBDOMAIN}/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+",
        "a domain-prefixed path such as example.com/controller",
        253,
    ),
]
Protocol = Annotated[
    str,
    _pattern(
        rf"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?|{_SUBDOMAIN}/[A-Za-z0-9]+",
        "a protocol such as HTTP, HTTPS, TLS, TCP, UDP or a domain-prefixed name",
        255,
    ),
]
Weight = Annotated[int, within(0, 1_000_000)]


class ParentReference(Model):
    """Where a route attaches: a Gateway (default) or, for the mesh, a Service (``group: ""``)."""

    group: Group | None = None
    kind: Kind | None = None
    namespace: DNSLabel | None = None
    name: ObjectName
    section_name: SectionName | None = None
    port: Port | None = None


class BackendObjectReference(Model):
    group: Group | None = None
    kind: Kind | None = None
    name: ObjectName
    namespace: DNSLabel | None = None
    port: Port | None = None

    @property
    def is_service(self) -> bool:
        return (self.group or "") in ("", "core") and (self.kind or "Service") == "Service"

    @model_validator(mode="after")
    def _port(self) -> BackendObjectReference:
        problems = Problems()
        if self.is_service and self.port is None:
            problems.add("port", "required value: a Service backend needs a port")
        problems.raise_if_any()
        return self


class BackendRef(BackendObjectReference):
    weight: Weight | None = None


class LocalObjectReference(Model):
    group: Group
    kind: Kind
    name: ObjectName


class SecretObjectReference(Model):
    group: Group | None = None
    kind: Kind | None = None
    name: ObjectName
    namespace: DNSLabel | None = None


# ----------------------------------------------------------------------------- GatewayClass


class ParametersReference(Model):
    group: Group
    kind: Kind
    name: ObjectName
    namespace: DNSLabel | None = None


class GatewayClassSpec(Model):
    controller_name: ControllerName
    parameters_ref: ParametersReference | None = None
    description: Annotated[str, _pattern(r".*", "text", 64)] | None = None


class GatewayClass(Resource):
    spec: GatewayClassSpec


# ----------------------------------------------------------------------------- Gateway


class RouteGroupKind(Model):
    group: Group | None = None
    kind: Kind


class RouteNamespaces(Model):
    from_: Literal["All", "Same", "Selector", "None"] | None = Field(default=None, alias="from")
    selector: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _rules(self) -> RouteNamespaces:
        problems = Problems()
        if self.from_ == "Selector" and self.selector is None:
            problems.add("selector", "required value when from is Selector")
        if self.selector is not None:
            for issue in label_selector_issues(self.selector, "selector"):
                problems.add(issue.path, issue.message)
        problems.raise_if_any()
        return self


class AllowedRoutes(Model):
    namespaces: RouteNamespaces | None = None
    kinds: list[RouteGroupKind] | None = Field(default=None, max_length=8)


class FrontendValidation(Model):
    ca_certificate_refs: list[SecretObjectReference] | None = Field(default=None, max_length=8)


class GatewayTLSConfig(Model):
    mode: Literal["Terminate", "Passthrough"] | None = None
    certificate_refs: list[SecretObjectReference] | None = Field(default=None, max_length=64)
    frontend_validation: FrontendValidation | None = None
    options: dict[LabelKey, str] | None = None

    @model_validator(mode="after")
    def _rules(self) -> GatewayTLSConfig:
        problems = Problems()
        if (
            (self.mode or "Terminate") == "Terminate"
            and not self.certificate_refs
            and not self.options
        ):
            problems.add("certificateRefs", "required value when mode is Terminate")
        problems.raise_if_any()
        return self


class Listener(Model):
    name: SectionName
    hostname: Hostname | None = None
    port: Port
    protocol: Protocol
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes | None = None

    @model_validator(mode="after")
    def _rules(self) -> Listener:
        problems = Problems()
        if self.protocol in ("HTTPS", "TLS") and self.tls is None:
            problems.add("tls", f"required value for protocol {self.protocol}")
        if self.protocol in ("HTTP", "TCP", "UDP") and self.tls is not None:
            problems.add("tls", f"may not be set for protocol {self.protocol}")
        if self.protocol in ("TCP", "UDP") and self.hostname is not None:
            problems.add("hostname", f"may not be set for protocol {self.protocol}")
        problems.raise_if_any()
        return self


class GatewayAddress(Model):
    type: (
        Annotated[
            str,
            _pattern(
                rf"IPAddress|Hostname|NamedAddress|{_SUBDOMAIN}/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+",
                "IPAddress, Hostname, NamedAddress or a domain-prefixed type",
                253,
            ),
        ]
        | None
    ) = None
    value: Annotated[str, _pattern(r".+", "a non-empty address", 253)]


class GatewayInfrastructure(Model):
    labels: Labels | None = None
    annotations: dict[LabelKey, str] | None = None
    parameters_ref: LocalObjectReference | None = None


class GatewaySpec(Model):
    gateway_class_name: ObjectName
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewayAddress] | None = Field(default=None, max_length=16)
    infrastructure: GatewayInfrastructure | None = None

    @model_validator(mode="after")
    def _rules(self) -> GatewaySpec:
        problems = Problems()
        names: set[str] = set()
        bindings: set[tuple[int, str, str]] = set()
        for position, listener in enumerate(self.listeners):
            if listener.name in names:
                problems.add(
                    f"listeners[{position}].name", f"duplicate listener name {listener.name!r}"
                )
            binding = (listener.port, listener.protocol, listener.hostname or "")
            if binding in bindings:
                problems.add(
                    f"listeners[{position}]",
                    "another listener has the same port, protocol and hostname",
                )
            names.add(listener.name)
            bindings.add(binding)
        for position, address in enumerate(self.addresses or []):
            if (address.type or "IPAddress") == "IPAddress":
                problems.check(f"addresses[{position}].value", common.ip_error(address.value))
        problems.raise_if_any()
        return self


class Gateway(Resource):
    spec: GatewaySpec
