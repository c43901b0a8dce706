"""What a VirtualService HTTP route does besides routing: redirect, rewrite, retry, fault, CORS."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from ambientmesh.resources.issues import invalid
from ambientmesh.resources.istio_common import StringMatch
from ambientmesh.resources.modeling import (
    Duration,
    DurationOrZero,
    Model,
    NonEmpty,
    NonNegative,
    Percent,
    Port,
    Problems,
    Regex,
    one_of,
    rule,
    within,
)


class HTTPRedirect(Model):
    uri: str | None = None
    authority: str | None = None
    port: Port | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: str | None = None
    redirect_code: Literal[301, 302, 303, 307, 308] | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRedirect:
        problems = Problems()
        one_of(
            problems,
            "port",
            {"port": self.port is not None, "derivePort": self.derive_port is not None},
            required=False,
        )
        if not (self.uri or self.authority or self.port or self.derive_port or self.scheme):
            problems.add(
                "", "at least one of uri, authority, port, derivePort or scheme must be set"
            )
        problems.raise_if_any()
        return self


class HTTPBody(Model):
    string: str | None = None
    bytes: str | None = None

    @model_validator(mode="after")
    def _one(self) -> HTTPBody:
        problems = Problems()
        one_of(
            problems,
            "",
            {"string": self.string is not None, "bytes": self.bytes is not None},
            required=True,
        )
        problems.raise_if_any()
        return self


class HTTPDirectResponse(Model):
    status: Annotated[int, within(200, 599)]
    body: HTTPBody | None = None


class Delegate(Model):
    name: NonEmpty
    namespace: str | None = None


class RegexRewrite(Model):
    match: Regex
    rewrite: str


class HTTPRewrite(Model):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPRewrite:
        problems = Problems()
        one_of(
            problems,
            "uri",
            {"uri": self.uri is not None, "uriRegexRewrite": self.uri_regex_rewrite is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


# Envoy's retry policies plus gRPC status names; bare status codes are also accepted.
RETRY_ON = {
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
}


def _retry_on_error(value: str) -> str | None:
    for token in (part.strip() for part in value.split(",")):
        if token in RETRY_ON or (token.isdigit() and 100 <= int(token) <= 599):
            continue
        return invalid(value, f"unknown retry condition {token!r}")
    return None


class HTTPRetry(Model):
    attempts: NonNegative | None = None
    per_try_timeout: Duration | None = None
    retry_on: Annotated[str, rule(_retry_on_error)] | None = None
    retry_remote_localities: bool | None = None
    retry_ignore_previous_hosts: bool | None = None
    backoff: Duration | None = None


class Percentage(Model):
    value: Percent


class FaultDelay(Model):
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percentage | None = None
    percent: Annotated[int, within(0, 100)] | None = None

    @model_validator(mode="after")
    def _rules(self) -> FaultDelay:
        problems = Problems()
        one_of(
            problems,
            "fixedDelay",
            {
                "fixedDelay": self.fixed_delay is not None,
                "exponentialDelay": self.exponential_delay is not None,
            },
            required=True,
        )
        problems.raise_if_any()
        return self


GRPC_STATUS = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


def _grpc_status_error(value: str) -> str | None:
    if value not in GRPC_STATUS:
        return invalid(value, "must be a gRPC status name such as UNAVAILABLE")
    return None


class FaultAbort(Model):
    http_status: Annotated[int, within(200, 599)] | None = None
    grpc_status: Annotated[str, rule(_grpc_status_error)] | None = None
    http2_error: str | None = None
    percentage: Percentage | None = None

    @model_validator(mode="after")
    def _rules(self) -> FaultAbort:
        problems = Problems()
        one_of(
            problems,
            "httpStatus",
            {
                "httpStatus": self.http_status is not None,
                "grpcStatus": self.grpc_status is not None,
                "http2Error": self.http2_error is not None,
            },
            required=True,
        )
        problems.raise_if_any()
        return self


class HTTPFaultInjection(Model):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None

    @model_validator(mode="after")
    def _rules(self) -> HTTPFaultInjection:
        problems = Problems()
        if self.delay is None and self.abort is None:
            problems.add("", "at least one of delay or abort must be set")
        problems.raise_if_any()
        return self


class CorsPolicy(Model):
    allow_origins: list[StringMatch] | None = None
    allow_origin: list[str] | None = None
    allow_methods: list[str] | None = None
    allow_headers: list[str] | None = None
    expose_headers: list[str] | None = None
    max_age: DurationOrZero | None = None
    allow_credentials: bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None
