"""Types shared by the Istio APIs: workload selectors, policy target references, string matches."""

from __future__ import annotations

from typing import Annotated

from pydantic import model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.modeling import (
    Labels,
    Model,
    NonEmpty,
    Port,
    Problems,
    Regex,
    one_of,
    rule,
)

MAX_TARGET_REFS = 16


class WorkloadSelector(Model):
    """``matchLabels`` over the pods in the resource's namespace (root namespace: all)."""

    match_labels: Labels | None = None

    @model_validator(mode="after")
    def _no_wildcards(self) -> WorkloadSelector:
        # Istio rejects '*' in selector labels: they are matched literally, never as a glob.
        problems = Problems()
        for name, value in (self.match_labels or {}).items():
            if "*" in name or "*" in value:
                problems.add(f"matchLabels[{name}]", "wildcards are not supported in selectors")
        problems.raise_if_any()
        return self


class PolicyTargetReference(Model):
    """What a policy attaches to instead of a selector (a Gateway, Service, ServiceEntry...)."""

    group: str | None = None
    kind: NonEmpty
    name: NonEmpty
    namespace: str | None = None


# (group, kind) pairs a policy's targetRef may name, as Istio accepts them.
TARGET_KINDS = {
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("", "Service"),
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
}


def check_targets(
    problems: Problems,
    *,
    selector: WorkloadSelector | None,
    target_ref: PolicyTargetReference | None,
    target_refs: list[PolicyTargetReference] | None,
) -> None:
    """``selector``, ``targetRef`` and ``targetRefs`` are mutually exclusive; kinds are known."""
    if selector is not None and (target_ref is not None or target_refs):
        problems.add(
            "targetRefs" if target_refs else "targetRef", "may not be set together with selector"
        )
    if target_ref is not None and target_refs:
        problems.add("targetRefs", "only one of targetRef or targetRefs may be set")
    if target_refs and len(target_refs) > MAX_TARGET_REFS:
        problems.add("targetRefs", f"must have at most {MAX_TARGET_REFS} items")
    refs = [("targetRef", target_ref)] if target_ref is not None else []
    refs += [(f"targetRefs[{i}]", ref) for i, ref in enumerate(target_refs or [])]
    for path, ref in refs:
        if ref is not None and (ref.group or "", ref.kind) not in TARGET_KINDS:
            problems.add(
                f"{path}.kind",
                f"unsupported target {ref.group or 'core'}/{ref.kind}: must be a Gateway, "
                "GatewayClass, Service or ServiceEntry",
            )


class StringMatch(Model):
    """Exactly one of ``exact``, ``prefix``, ``regex`` (RE2, matched against the whole value)."""

    exact: str | None = None
    prefix: str | None = None
    regex: Regex | None = None

    @property
    def is_empty(self) -> bool:
        return self.exact is None and self.prefix is None and self.regex is None

    @model_validator(mode="after")
    def _one(self) -> StringMatch:
        problems = Problems()
        one_of(
            problems,
            "",
            {
                "exact": self.exact is not None,
                "prefix": self.prefix is not None,
                "regex": self.regex is not None,
            },
            required=False,
        )
        problems.raise_if_any()
        return self


class PortSelector(Model):
    number: Port


def _host_error(value: str) -> str | None:
    """A service host: a DNS name, a short name, or a name with a leading ``*.`` wildcard."""
    if value == "*":
        return None
    name = value[2:] if value.startswith("*.") else value
    if "*" in name:
        return invalid(
            value, "a wildcard is only allowed as the leading label, as in *.example.com"
        )
    labels = name.rstrip(".").split(".")
    if not name or any(common.dns_label_error(label.lower()) for label in labels):
        return invalid(value, "must be a DNS name such as reviews.default.svc.cluster.local")
    return None


Host = Annotated[str, rule(_host_error)]


def _export_error(value: str) -> str | None:
    if value in (".", "*", "~"):
        return None
    if common.dns_label_error(value) is not None:
        return invalid(value, 'must be ".", "*" or a namespace name')
    return None


ExportTo = Annotated[str, rule(_export_error)]


def glob_error(value: str) -> str | None:
    """Istio's string match in policies: exact, ``prefix*``, ``*suffix`` or ``*`` only."""
    if value == "*" or "*" not in value:
        return None
    if value.count("*") == 1 and (value.startswith("*") or value.endswith("*")):
        return None
    return invalid(value, "'*' is only supported as the whole value, a prefix or a suffix")


Glob = Annotated[str, rule(glob_error)]
