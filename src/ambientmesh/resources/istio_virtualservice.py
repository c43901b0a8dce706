"""networking.istio.io VirtualService: ordered HTTP, TLS and TCP routing rules for hosts."""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.istio_common import ExportTo, Host, PortSelector, StringMatch
from ambientmesh.resources.istio_http import (
    CorsPolicy,
    Delegate,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    Percentage,
)
from ambientmesh.resources.modeling import (
    CIDR,
    DurationOrZero,
    Labels,
    Model,
    NonEmpty,
    NonNegative,
    Port,
    Problems,
    one_of,
    rule,
    within,
)
from ambientmesh.resources.resource import Resource


def _lower_header_error(value: str) -> str | None:
    # Istio requires lowercase header names in matches: HTTP/2 lowercases them on the wire.
    if value != value.lower():
        return invalid(value, "header names must be lowercase")
    return common.http_header_name_error(value)


LowerHeader = Annotated[str, rule(_lower_header_error)]


def _gateway_error(value: str) -> str | None:
    if value == "mesh":
        return None
    namespace, _, name = value.rpartition("/")
    if (namespace and common.dns_label_error(namespace)) or common.dns_subdomain_error(name):
        return invalid(value, 'must be "mesh", <gateway name> or <namespace>/<gateway name>')
    return None


GatewayName = Annotated[str, rule(_gateway_error)]

# ----------------------------------------------------------------------------- destinations


class Destination(Model):
    host: NonEmpty
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(Model):
    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(Model):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRouteDestination(Model):
    destination: Destination
    weight: NonNegative | None = None
    headers: Headers | None = None


class RouteDestination(Model):
    destination: Destination
    weight: NonNegative | None = None


def check_weights(problems: Problems, path: str, weights: list[int | None]) -> None:
    """With several destinations, at least one must carry traffic."""
    if len(weights) > 1 and sum(weight or 0 for weight in weights) == 0:
        problems.add(path, "total destination weight is 0: give at least one destination a weight")


# ----------------------------------------------------------------------------- HTTP


class HTTPMatchRequest(Model):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[LowerHeader, StringMatch] | None = None
    port: Port | None = None
    source_labels: Labels | None = None
    gateways: list[GatewayName] | None = None
    query_params: dict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: dict[LowerHeader, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPMatchRequest:
        problems = Problems()
        # An empty header/query match means "present"; for the URI and friends it is a mistake.
        for name in ("uri", "scheme", "method", "authority"):
            match = getattr(self, name)
            if match is not None and match.is_empty:
                problems.add(name, "one of exact, prefix or regex must be set")
        problems.raise_if_any()
        return self


class HTTPMirrorPolicy(Model):
    destination: Destination
    percentage: Percentage | None = None


class HTTPRoute(Model):
    name: str | None = None
    match: list[HTTPMatchRequest] | None = None
    route: list[HTTPRouteDestination] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: DurationOrZero | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: list[HTTPMirrorPolicy] | None = None
    mirror_percent: Annotated[int, within(0, 100)] | None = None
    mirror_percentage: Percentage | None = None
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRoute:
        problems = Problems()
        one_of(
            problems,
            "route",
            {
                "route": bool(self.route),
                "redirect": self.redirect is not None,
                "directResponse": self.direct_response is not None,
                "delegate": self.delegate is not None,
            },
            required=True,
        )
        if self.rewrite is not None and (
            self.redirect is not None or self.direct_response is not None
        ):
            problems.add("rewrite", "may not be combined with redirect or directResponse")
        if self.mirror is not None and self.mirrors:
            problems.add("mirrors", "only one of mirror or mirrors may be set")
        check_weights(problems, "route", [destination.weight for destination in self.route or []])
        problems.raise_if_any()
        return self


# ----------------------------------------------------------------------------- TLS and TCP


class L4MatchAttributes(Model):
    destination_subnets: list[CIDR] | None = None
    port: Port | None = None
    source_subnet: CIDR | None = None
    source_labels: Labels | None = None
    gateways: list[GatewayName] | None = None
    source_namespace: str | None = None


class TLSMatchAttributes(Model):
    sni_hosts: list[Host]
    destination_subnets: list[CIDR] | None = None
    port: Port | None = None
    source_labels: Labels | None = None
    gateways: list[GatewayName] | None = None
    source_namespace: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> TLSMatchAttributes:
        problems = Problems()
        if not self.sni_hosts:
            problems.add("sniHosts", "required value: at least one SNI host")
        problems.raise_if_any()
        return self


class TLSRoute(Model):
    match: list[TLSMatchAttributes]
    route: list[RouteDestination] | None = None

    @model_validator(mode="after")
    def _rules(self) -> TLSRoute:
        problems = Problems()
        if not self.match:
            problems.add("match", "required value: TLS routes match on SNI")
        if not self.route:
            problems.add("route", "required value: at least one destination")
        check_weights(problems, "route", [destination.weight for destination in self.route or []])
        problems.raise_if_any()
        return self


class TCPRoute(Model):
    match: list[L4MatchAttributes] | None = None
    route: list[RouteDestination] | None = None

    @model_validator(mode="after")
    def _rules(self) -> TCPRoute:
        problems = Problems()
        if not self.route:
            problems.add("route", "required value: at least one destination")
        check_weights(problems, "route", [destination.weight for destination in self.route or []])
        problems.raise_if_any()
        return self


# ----------------------------------------------------------------------------- VirtualService


class VirtualServiceSpec(Model):
    hosts: list[Host] | None = None
    gateways: list[GatewayName] | None = None
    http: list[HTTPRoute] | None = None
    tls: list[TLSRoute] | None = None
    tcp: list[TCPRoute] | None = None
    export_to: list[ExportTo] | None = None

    @model_validator(mode="after")
    def _rules(self) -> VirtualServiceSpec:
        problems = Problems()
        if not self.http and not self.tls and not self.tcp:
            problems.add("http", "at least one of http, tls or tcp routes must be set")
        if self.hosts:
            self._check_mesh_wildcard(problems)
        else:
            self._check_delegate(problems)
        problems.raise_if_any()
        return self

    def _check_mesh_wildcard(self, problems: Problems) -> None:
        bound_to_mesh = not self.gateways or "mesh" in self.gateways
        for position, host in enumerate(self.hosts or []):
            if host == "*" and bound_to_mesh:
                problems.add(
                    f"hosts[{position}]",
                    'the wildcard host "*" is not allowed for the mesh gateway',
                )

    def _check_delegate(self, problems: Problems) -> None:
        # Istio treats a VirtualService without hosts as a delegate, included by another one's
        # `delegate` route; such a VirtualService may only hold plain HTTP routes.
        if self.gateways:
            problems.add(
                "hosts", "required value: a delegate VirtualService (no hosts) may not set gateways"
            )
        if self.tls or self.tcp:
            problems.add(
                "hosts",
                "required value: a delegate VirtualService (no hosts) supports only http routes",
            )
        for position, route in enumerate(self.http or []):
            if route.delegate is not None:
                problems.add(
                    f"http[{position}].delegate", "a delegate VirtualService may not delegate again"
                )


class VirtualService(Resource):
    spec: VirtualServiceSpec
