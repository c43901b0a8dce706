"""Rules for the core kinds that Kubernetes' JSON schemas do not express.

The schemas (``schemas.py``) check structure and types; these functions check values and
relations, as the Kubernetes API server's validation does (port ranges, name formats, enums,
uniqueness, selector/template agreement). They read the object defensively: a value of the wrong
type is skipped here because the schema already reported it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ambientmesh.resources import common
from ambientmesh.resources.core_pod import check_pod, check_pod_spec
from ambientmesh.resources.core_support import PROTOCOLS, Issues, int_of, list_of, map_of, str_of
from ambientmesh.resources.issues import FieldIssue, describe, invalid
from ambientmesh.resources.metadata import check_template_metadata
from ambientmesh.resources.selectors import (
    from_label_selector,
    label_selector_issues,
    labels_issues,
)

# ----------------------------------------------------------------------------- workloads


def check_deployment(obj: Mapping[str, Any]) -> list[FieldIssue]:
    issues = Issues()
    spec = map_of(obj.get("spec"))
    issues.at_least("spec.replicas", spec.get("replicas"), 0)
    for name in ("minReadySeconds", "revisionHistoryLimit"):
        issues.at_least(f"spec.{name}", spec.get(name), 0)
    strategy = map_of(spec.get("strategy"))
    issues.enum("spec.strategy.type", strategy.get("type"), ("RollingUpdate", "Recreate"))
    _check_rolling_update(issues, strategy)
    _check_template_and_selector(issues, spec, ("Always",))
    return issues


def _check_rolling_update(issues: Issues, strategy: Mapping[str, Any]) -> None:
    rolling = map_of(strategy.get("rollingUpdate"))
    values = {}
    for name in ("maxSurge", "maxUnavailable"):
        value = rolling.get(name)
        where = f"spec.strategy.rollingUpdate.{name}"
        if int_of(value) is not None:
            issues.at_least(where, value, 0)
        elif isinstance(value, str) and not re.fullmatch(r"\d+%", value):
            issues.add(where, invalid(value, "must be an integer or a percentage such as 25%"))
        values[name] = value
    if values.get("maxSurge") in (0, "0%") and values.get("maxUnavailable") in (0, "0%"):
        issues.add("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0")


def _check_template_and_selector(
    issues: Issues, spec: Mapping[str, Any], policies: tuple[str, ...]
) -> None:
    template = map_of(spec.get("template"))
    issues.extend(check_template_metadata(template.get("metadata"), "spec.template.metadata"))
    check_pod_spec(issues, template.get("spec"), "spec.template.spec", policies)
    selector = spec.get("selector")
    if selector is None:
        return
    found = label_selector_issues(selector, "spec.selector")
    issues.extend(found)
    if found or not isinstance(selector, Mapping):
        return
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        issues.add("spec.selector", "empty selector is invalid: it would match every pod")
        return
    labels = map_of(map_of(template.get("metadata")).get("labels"))
    if not from_label_selector(selector).matches(
        {k: v for k, v in labels.items() if isinstance(v, str)}
    ):
        issues.add("spec.template.metadata.labels", "`selector` does not match template `labels`")


def check_job(obj: Mapping[str, Any]) -> list[FieldIssue]:
    issues = Issues()
    spec = map_of(obj.get("spec"))
    for name in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        issues.at_least(f"spec.{name}", spec.get(name), 0)
    issues.at_least("spec.activeDeadlineSeconds", spec.get("activeDeadlineSeconds"), 1)
    issues.enum("spec.completionMode", spec.get("completionMode"), ("NonIndexed", "Indexed"))
    if spec.get("selector") is not None and spec.get("manualSelector") is not True:
        issues.add(
            "spec.selector",
            "`selector` will be auto-generated; set manualSelector: true to choose it",
        )
        spec = {name: value for name, value in spec.items() if name != "selector"}
    _check_template_and_selector(issues, spec, ("OnFailure", "Never"))
    return issues


# ----------------------------------------------------------------------------- services

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
TRAFFIC_POLICIES = ("Cluster", "Local")
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")


def check_service(obj: Mapping[str, Any]) -> list[FieldIssue]:
    issues = Issues()
    spec = obj.get("spec")
    if spec is None:
        issues.add("spec", "required value")
        return issues
    spec = map_of(spec)
    kind = spec.get("type", "ClusterIP")
    issues.enum("spec.type", kind, SERVICE_TYPES)
    issues.enum("spec.internalTrafficPolicy", spec.get("internalTrafficPolicy"), TRAFFIC_POLICIES)
    issues.enum("spec.externalTrafficPolicy", spec.get("externalTrafficPolicy"), TRAFFIC_POLICIES)
    issues.enum("spec.trafficDistribution", spec.get("trafficDistribution"), TRAFFIC_DISTRIBUTIONS)
    issues.enum("spec.sessionAffinity", spec.get("sessionAffinity"), ("None", "ClientIP"))
    issues.enum(
        "spec.ipFamilyPolicy",
        spec.get("ipFamilyPolicy"),
        ("SingleStack", "PreferDualStack", "RequireDualStack"),
    )
    for position, family in enumerate(list_of(spec.get("ipFamilies"))):
        issues.enum(f"spec.ipFamilies[{position}]", family, ("IPv4", "IPv6"))
    issues.extend(labels_issues(spec.get("selector"), "spec.selector"))
    _check_cluster_ips(issues, spec)
    if kind == "ExternalName":
        name = str_of(spec.get("externalName"))
        issues.add(
            "spec.externalName",
            common.dns_subdomain_error(name.rstrip("."))
            if name
            else "required value for type ExternalName",
        )
    _check_service_ports(issues, spec, kind)
    return issues


def _check_cluster_ips(issues: Issues, spec: Mapping[str, Any]) -> None:
    cluster_ip = str_of(spec.get("clusterIP"))
    if cluster_ip and cluster_ip != "None":
        issues.add("spec.clusterIP", common.ip_error(cluster_ip))
    ips = list_of(spec.get("clusterIPs"))
    for position, address in enumerate(ips):
        if isinstance(address, str) and address != "None":
            issues.add(f"spec.clusterIPs[{position}]", common.ip_error(address))
    if cluster_ip and ips and ips[0] != cluster_ip:
        issues.add(
            "spec.clusterIPs[0]", f"must match `clusterIP` {describe(cluster_ip)} when both are set"
        )


def _check_service_ports(issues: Issues, spec: Mapping[str, Any], kind: Any) -> None:
    ports = list_of(spec.get("ports"))
    headless = spec.get("clusterIP") == "None"
    if not ports and kind != "ExternalName" and not headless:
        issues.add("spec.ports", "required value: a Service needs at least one port")
    names: set[str] = set()
    pairs: set[tuple[Any, Any]] = set()
    for position, entry in enumerate(ports):
        port = map_of(entry)
        path = f"spec.ports[{position}]"
        _check_service_port_name(issues, port, path, names, len(ports))
        number = int_of(port.get("port"))
        if number is not None:
            issues.add(f"{path}.port", common.port_error(number))
        target = port.get("targetPort")
        if target is not None:
            issues.add(f"{path}.targetPort", common.int_or_port_name_error(target))
        node_port = int_of(port.get("nodePort"))
        if node_port:
            issues.add(f"{path}.nodePort", common.port_error(node_port))
            if kind not in ("NodePort", "LoadBalancer"):
                issues.add(f"{path}.nodePort", f"may not be used when `type` is {describe(kind)}")
        protocol = port.get("protocol", "TCP")
        issues.enum(f"{path}.protocol", protocol, PROTOCOLS)
        app_protocol = str_of(port.get("appProtocol"))
        if app_protocol:
            issues.add(f"{path}.appProtocol", common.qualified_name_error(app_protocol))
        if (number, protocol) in pairs:
            issues.add(path, f"duplicate port {number}/{protocol}")
        pairs.add((number, protocol))


def _check_service_port_name(
    issues: Issues, port: Mapping[str, Any], path: str, names: set[str], count: int
) -> None:
    name = str_of(port.get("name"))
    if not name:
        if count > 1:
            issues.add(
                f"{path}.name",
                "required value: ports must be named when a Service has more than one",
            )
        return
    issues.add(f"{path}.name", common.dns_label_error(name))
    if name in names:
        issues.add(f"{path}.name", f"duplicate value {describe(name)}: port names must be unique")
    names.add(name)


# ----------------------------------------------------------------------------- the rest


def check_node(obj: Mapping[str, Any]) -> list[FieldIssue]:
    issues = Issues()
    spec = map_of(obj.get("spec"))
    cidr = str_of(spec.get("podCIDR"))
    if cidr:
        issues.add("spec.podCIDR", common.cidr_error(cidr))
    for position, block in enumerate(list_of(spec.get("podCIDRs"))):
        if isinstance(block, str):
            issues.add(f"spec.podCIDRs[{position}]", common.cidr_error(block))
    for position, taint in enumerate(list_of(spec.get("taints"))):
        issues.enum(
            f"spec.taints[{position}].effect",
            map_of(taint).get("effect"),
            ("NoSchedule", "PreferNoSchedule", "NoExecute"),
        )
    return issues


def check_nothing(obj: Mapping[str, Any]) -> list[FieldIssue]:
    """Namespace and ServiceAccount: the schema and metadata rules say everything."""
    return []


CHECKS: dict[tuple[str, str], Callable[[Mapping[str, Any]], list[FieldIssue]]] = {
    ("", "Namespace"): check_nothing,
    ("", "Node"): check_node,
    ("", "Pod"): check_pod,
    ("", "Service"): check_service,
    ("", "ServiceAccount"): check_nothing,
    ("apps", "Deployment"): check_deployment,
    ("batch", "Job"): check_job,
}
