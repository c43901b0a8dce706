"""telemetry.istio.io Telemetry: tracing, metrics and access logging, per scope."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from ambientmesh.resources.istio_common import (
    PolicyTargetReference,
    WorkloadSelector,
    check_targets,
)
from ambientmesh.resources.modeling import (
    Duration,
    Model,
    NonEmpty,
    Percent,
    Problems,
    one_of,
)
from ambientmesh.resources.resource import Resource

WorkloadMode = Literal["CLIENT_AND_SERVER", "CLIENT", "SERVER"]
Metric = Literal[
    "ALL_METRICS",
    "REQUEST_COUNT",
    "REQUEST_DURATION",
    "REQUEST_SIZE",
    "RESPONSE_SIZE",
    "TCP_OPENED_CONNECTIONS",
    "TCP_CLOSED_CONNECTIONS",
    "TCP_SENT_BYTES",
    "TCP_RECEIVED_BYTES",
    "GRPC_REQUEST_MESSAGES",
    "GRPC_RESPONSE_MESSAGES",
]


class ProviderRef(Model):
    name: NonEmpty


class ModeMatch(Model):
    mode: WorkloadMode | None = None


# ----------------------------------------------------------------------------- tracing


class Literal_(Model):
    value: str


class EnvironmentTag(Model):
    name: NonEmpty
    default_value: str | None = None


class HeaderTag(Model):
    name: NonEmpty
    default_value: str | None = None


class FormatterTag(Model):
    value: NonEmpty


class CustomTag(Model):
    literal: Literal_ | None = None
    environment: EnvironmentTag | None = None
    header: HeaderTag | None = None
    formatter: FormatterTag | None = None

    @model_validator(mode="after")
    def _one(self) -> CustomTag:
        problems = Problems()
        one_of(
            problems,
            "",
            {
                "literal": self.literal is not None,
                "environment": self.environment is not None,
                "header": self.header is not None,
                "formatter": self.formatter is not None,
            },
            required=True,
        )
        problems.raise_if_any()
        return self


class Tracing(Model):
    match: ModeMatch | None = None
    providers: list[ProviderRef] | None = None
    random_sampling_percentage: Percent | None = None
    disable_span_reporting: bool | None = None
    custom_tags: dict[str, CustomTag] | None = None
    use_request_id_for_trace_sampling: bool | None = None
    enable_istio_tags: bool | None = None
    disable_context_propagation: bool | None = None


# ----------------------------------------------------------------------------- metrics


class MetricSelector(Model):
    metric: Metric | None = None
    custom_metric: str | None = None
    mode: WorkloadMode | None = None

    @model_validator(mode="after")
    def _one(self) -> MetricSelector:
        problems = Problems()
        one_of(
            problems,
            "metric",
            {"metric": self.metric is not None, "customMetric": self.custom_metric is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


class TagOverride(Model):
    operation: Literal["UPSERT", "REMOVE"] | None = None
    value: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> TagOverride:
        problems = Problems()
        operation = self.operation or "UPSERT"
        if operation == "UPSERT" and not self.value:
            problems.add("value", "required value for operation UPSERT")
        if operation == "REMOVE" and self.value:
            problems.add("value", "may not be set for operation REMOVE")
        problems.raise_if_any()
        return self


class MetricsOverrides(Model):
    match: MetricSelector | None = None
    disabled: bool | None = None
    tag_overrides: dict[str, TagOverride] | None = None


class Metrics(Model):
    providers: list[ProviderRef] | None = None
    overrides: list[MetricsOverrides] | None = None
    reporting_interval: Duration | None = None


# ----------------------------------------------------------------------------- access logging


class AccessLogFilter(Model):
    expression: NonEmpty


class AccessLogging(Model):
    match: ModeMatch | None = None
    providers: list[ProviderRef] | None = None
    disabled: bool | None = None
    filter: AccessLogFilter | None = None


class TelemetrySpec(Model):
    selector: WorkloadSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: list[PolicyTargetReference] | None = None
    tracing: list[Tracing] | None = None
    metrics: list[Metrics] | None = None
    access_logging: list[AccessLogging] | None = None

    @model_validator(mode="after")
    def _rules(self) -> TelemetrySpec:
        problems = Problems()
        check_targets(
            problems,
            selector=self.selector,
            target_ref=self.target_ref,
            target_refs=self.target_refs,
        )
        problems.raise_if_any()
        return self


class Telemetry(Resource):
    spec: TelemetrySpec = TelemetrySpec()
