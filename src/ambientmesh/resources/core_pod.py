"""Rules for PodSpecs (in Pods and in workload templates) that the JSON schemas do not express."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ambientmesh.resources import common
from ambientmesh.resources.core_support import PROTOCOLS, Issues, int_of, list_of, map_of, str_of
from ambientmesh.resources.issues import FieldIssue, describe, field, index, invalid, key
from ambientmesh.resources.selectors import labels_issues

RESTART_POLICIES = ("Always", "OnFailure", "Never")
# A resource.Quantity: a signed decimal with an optional SI, binary-SI or exponent suffix.
_QUANTITY = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?")
# Kubernetes 1.34+ accepts any printable ASCII except '=' in environment variable names.
_ENV_NAME = re.compile(r"[ -<>-~]+")


# ----------------------------------------------------------------------------- pods


def check_pod(obj: Mapping[str, Any]) -> list[FieldIssue]:
    issues = Issues()
    check_pod_spec(issues, obj.get("spec"), "spec", RESTART_POLICIES)
    return issues


def check_pod_spec(issues: Issues, spec: Any, path: str, restart_policies: tuple[str, ...]) -> None:
    """Everything about one PodSpec: containers, ports, probes, env, volumes, policies."""
    if spec is None:
        issues.add(path, "required value")
        return
    spec = map_of(spec)
    containers = spec.get("containers")
    if isinstance(containers, list) and not containers:
        issues.add(field(path, "containers"), "must have at least one container")
    names: set[str] = set()
    port_names: set[str] = set()
    volumes = _volume_names(issues, spec.get("volumes"), field(path, "volumes"))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for position, container in enumerate(list_of(spec.get(group))):
            where = index(field(path, group), position)
            _check_container(
                issues,
                map_of(container),
                where,
                names=names,
                port_names=port_names,
                volumes=volumes,
                group=group,
            )
    policy = spec.get("restartPolicy")
    if policy is None and "Always" not in restart_policies:
        names_ = ", ".join(f'"{name}"' for name in restart_policies)
        issues.add(field(path, "restartPolicy"), f"required value: must be one of {names_}")
    issues.enum(field(path, "restartPolicy"), policy, restart_policies)
    issues.enum(
        field(path, "dnsPolicy"),
        spec.get("dnsPolicy"),
        ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    )
    issues.extend(labels_issues(spec.get("nodeSelector"), field(path, "nodeSelector")))
    for name_field in ("serviceAccountName", "serviceAccount", "nodeName", "hostname", "subdomain"):
        value = str_of(spec.get(name_field))
        if value:
            check = (
                common.dns_label_error
                if name_field in ("hostname", "subdomain")
                else common.dns_subdomain_error
            )
            issues.add(field(path, name_field), check(value))
    issues.at_least(
        field(path, "terminationGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds"), 0
    )
    issues.at_least(field(path, "activeDeadlineSeconds"), spec.get("activeDeadlineSeconds"), 1)


def _volume_names(issues: Issues, volumes: Any, path: str) -> set[str]:
    names: set[str] = set()
    for position, volume in enumerate(list_of(volumes)):
        name = str_of(map_of(volume).get("name"))
        where = field(index(path, position), "name")
        if not name:
            continue
        issues.add(where, common.dns_label_error(name))
        if name in names:
            issues.add(where, f"duplicate value {describe(name)}: volume names must be unique")
        names.add(name)
    return names


def _check_container(
    issues: Issues,
    container: Mapping[str, Any],
    path: str,
    *,
    names: set[str],
    port_names: set[str],
    volumes: set[str],
    group: str,
) -> None:
    name = str_of(container.get("name"))
    if name:
        issues.add(field(path, "name"), common.dns_label_error(name))
        if name in names:
            issues.add(
                field(path, "name"),
                f"duplicate value {describe(name)}: container names must be unique in a pod",
            )
        names.add(name)
    if group != "ephemeralContainers" and not container.get("image"):
        issues.add(field(path, "image"), "required value")
    issues.enum(
        field(path, "imagePullPolicy"),
        container.get("imagePullPolicy"),
        ("Always", "Never", "IfNotPresent"),
    )
    for position, port in enumerate(list_of(container.get("ports"))):
        _check_container_port(
            issues, map_of(port), index(field(path, "ports"), position), port_names
        )
    for position, variable in enumerate(list_of(container.get("env"))):
        _check_env(issues, map_of(variable), index(field(path, "env"), position))
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if container.get(probe) is not None:
            _check_probe(issues, map_of(container.get(probe)), field(path, probe), probe)
    _check_resources(issues, map_of(container.get("resources")), field(path, "resources"))
    for position, mount in enumerate(list_of(container.get("volumeMounts"))):
        mount_name = str_of(map_of(mount).get("name"))
        if mount_name and mount_name not in volumes:
            issues.add(
                field(index(field(path, "volumeMounts"), position), "name"),
                f"not found: no volume named {describe(mount_name)} in the pod",
            )


def _check_container_port(
    issues: Issues, port: Mapping[str, Any], path: str, names: set[str]
) -> None:
    number = int_of(port.get("containerPort"))
    if number is not None:
        issues.add(field(path, "containerPort"), common.port_error(number))
    host_port = int_of(port.get("hostPort"))
    if host_port is not None:
        issues.add(field(path, "hostPort"), common.port_error(host_port, allow_zero=True))
    issues.enum(field(path, "protocol"), port.get("protocol"), PROTOCOLS)
    name = str_of(port.get("name"))
    if name:
        issues.add(field(path, "name"), common.iana_port_name_error(name))
        if name in names:
            issues.add(
                field(path, "name"),
                f"duplicate value {describe(name)}: port names must be unique in a pod",
            )
        names.add(name)


def _check_env(issues: Issues, variable: Mapping[str, Any], path: str) -> None:
    name = str_of(variable.get("name"))
    if name is not None and not _ENV_NAME.fullmatch(name):
        issues.add(
            field(path, "name"),
            invalid(name, "must consist of printable ASCII characters other than '='"),
        )
    source = variable.get("valueFrom")
    if source is not None:
        if variable.get("value"):
            issues.add(field(path, "valueFrom"), "may not be specified when `value` is not empty")
        chosen = [name for name in map_of(source) if map_of(source).get(name) is not None]
        if len(chosen) != 1:
            issues.add(
                field(path, "valueFrom"),
                "exactly one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef "
                f"or fileKeyRef must be set; got {len(chosen)}",
            )


_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _check_probe(issues: Issues, probe: Mapping[str, Any], path: str, which: str) -> None:
    chosen = [name for name in _HANDLERS if probe.get(name) is not None]
    if len(chosen) != 1:
        issues.add(
            path, f"exactly one of exec, httpGet, tcpSocket or grpc must be set; got {len(chosen)}"
        )
    for handler in ("httpGet", "tcpSocket"):
        port = map_of(probe.get(handler)).get("port")
        if port is not None:
            issues.add(field(field(path, handler), "port"), common.int_or_port_name_error(port))
    grpc_port = int_of(map_of(probe.get("grpc")).get("port"))
    if grpc_port is not None:
        issues.add(field(field(path, "grpc"), "port"), common.port_error(grpc_port))
    issues.enum(
        field(field(path, "httpGet"), "scheme"),
        map_of(probe.get("httpGet")).get("scheme"),
        ("HTTP", "HTTPS"),
    )
    for name in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        issues.at_least(field(path, name), probe.get(name), 0)
    threshold = int_of(probe.get("successThreshold"))
    if which != "readinessProbe" and threshold is not None and threshold > 1:
        issues.add(
            field(path, "successThreshold"),
            invalid(threshold, "must be 1 for liveness and startup probes"),
        )


def _check_resources(issues: Issues, resources: Mapping[str, Any], path: str) -> None:
    for section in ("limits", "requests"):
        for name, quantity in map_of(resources.get(section)).items():
            text = (
                str(quantity)
                if int_of(quantity) is not None or isinstance(quantity, float)
                else str_of(quantity)
            )
            if text is not None and not _QUANTITY.fullmatch(text):
                issues.add(
                    key(field(path, section), name),
                    invalid(quantity, "must be a quantity such as 500m, 2, 128Mi or 1Gi"),
                )
