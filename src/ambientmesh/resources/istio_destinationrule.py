"""networking.istio.io DestinationRule: a host's subsets and the traffic policy for each."""

from __future__ import annotations

from pydantic import model_validator

from ambientmesh.resources.istio_common import ExportTo, Host, WorkloadSelector
from ambientmesh.resources.istio_trafficpolicy import TrafficPolicy
from ambientmesh.resources.modeling import DNSLabel, Labels, Model, Problems
from ambientmesh.resources.resource import Resource


class Subset(Model):
    name: DNSLabel
    labels: Labels | None = None
    traffic_policy: TrafficPolicy | None = None


class DestinationRuleSpec(Model):
    host: Host
    traffic_policy: TrafficPolicy | None = None
    subsets: list[Subset] | None = None
    export_to: list[ExportTo] | None = None
    workload_selector: WorkloadSelector | None = None

    @model_validator(mode="after")
    def _rules(self) -> DestinationRuleSpec:
        problems = Problems()
        seen: set[str] = set()
        for position, subset in enumerate(self.subsets or []):
            if subset.name in seen:
                problems.add(f"subsets[{position}].name", f"duplicate subset name {subset.name!r}")
            seen.add(subset.name)
        problems.raise_if_any()
        return self


class DestinationRule(Resource):
    spec: DestinationRuleSpec
