"""Pod -> Workload (istio-ambient.md §3.2 and §3.4; istiod's ambient workloads builder)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import Labels, NodeFacts, PodFacts, ServiceFacts
from ambientmesh.proto import workload_pb2 as wpb

_TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_uid(config: MeshConfig, namespace: str, name: str) -> str:
    return f"{config.cluster_id}//Pod/{namespace}/{name}"


def has_workload(pod: PodFacts) -> bool:
    """Pods without an IP and pods that finished produce no Workload."""
    return bool(pod.ips) and pod.phase not in _TERMINAL_PHASES


def enrolled(pod: PodFacts, namespace_labels: Labels) -> bool:
    """In the mesh: pod or namespace label ``istio.io/dataplane-mode=ambient``; ``none`` on the
    pod opts out; host-network and sidecar-injected pods are never captured."""
    if pod.host_network or L.SIDECAR_STATUS_ANNOTATION in pod.meta.annotations:
        return False
    mode = pod.labels.get(L.DATAPLANE_MODE)
    if mode == L.DATAPLANE_NONE:
        return False
    if mode == L.DATAPLANE_AMBIENT:
        return True
    if pod.meta.annotations.get(L.REDIRECTION_ANNOTATION) == "enabled":
        return True
    return namespace_labels.get(L.DATAPLANE_MODE) == L.DATAPLANE_AMBIENT


def workload_type(pod: PodFacts) -> tuple[wpb.WorkloadType.ValueType, str]:
    """DEPLOYMENT/JOB/CRONJOB/POD and the owning object's name, from ownerReferences."""
    for kind, name in pod.owners:
        if kind == "Deployment":
            return wpb.DEPLOYMENT, name
        if kind == "ReplicaSet":
            template_hash = pod.labels.get(L.POD_TEMPLATE_HASH)
            if template_hash and name.endswith(f"-{template_hash}"):
                return wpb.DEPLOYMENT, name[: -len(template_hash) - 1]
            return wpb.POD, pod.meta.name
        if kind == "Job":
            return wpb.JOB, name
        if kind == "CronJob":
            return wpb.CRONJOB, name
    return wpb.POD, pod.meta.name


def canonical(labels: Labels, workload_name: str) -> tuple[str, str]:
    name = next((labels[k] for k in L.CANONICAL_NAME_LABELS if labels.get(k)), workload_name)
    revision = next((labels[k] for k in L.CANONICAL_REVISION_LABELS if labels.get(k)), "latest")
    return name, revision


def service_ports(service: ServiceFacts, pod: PodFacts) -> wpb.PortList:
    """The service's ports as this pod serves them; named targetPorts resolve against the
    pod's container ports, and a name the pod does not have leaves that port out."""
    ports = []
    for port in service.ports:
        target = port.target_port
        if target is None or target == "":
            number: int | None = port.port
        elif isinstance(target, int):
            number = target
        elif target.isdigit():
            number = int(target)
        else:
            number = pod.container_ports.get(target)
        if number is not None:
            ports.append(wpb.Port(service_port=port.port, target_port=number))
    return wpb.PortList(ports=ports)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadInputs:
    """Everything beyond the pod itself that its Workload depends on."""

    enrolled: bool
    services: Mapping[str, wpb.PortList]
    policies: Iterable[str]
    waypoint: wpb.GatewayAddress | None
    node: NodeFacts | None


def build(pod: PodFacts, inputs: WorkloadInputs, config: MeshConfig) -> wpb.Address:
    kind, owner = workload_type(pod)
    name, revision = canonical(pod.labels, owner)
    native = pod.labels.get(L.TUNNEL_LABEL) == "http"
    workload = wpb.Workload(
        uid=pod_uid(config, pod.meta.namespace, pod.meta.name),
        name=pod.meta.name,
        namespace=pod.meta.namespace,
        addresses=[ipaddress.ip_address(ip).packed for ip in pod.ips],
        tunnel_protocol=wpb.HBONE if inputs.enrolled or native else wpb.NONE,
        trust_domain="" if config.trust_domain == "cluster.local" else config.trust_domain,
        service_account=pod.service_account,
        node=pod.node,
        canonical_name=name,
        canonical_revision=revision,
        workload_type=kind,
        workload_name=owner,
        native_tunnel=native,
        authorization_policies=sorted(inputs.policies),
        status=wpb.HEALTHY if pod.ready and not pod.terminating else wpb.UNHEALTHY,
        cluster_id=config.cluster_id,
        network_mode=wpb.HOST_NETWORK if pod.host_network else wpb.STANDARD,
    )
    for key, ports in inputs.services.items():
        workload.services[key].CopyFrom(ports)
    if inputs.waypoint is not None:
        workload.waypoint.CopyFrom(inputs.waypoint)
    if inputs.node is not None:
        region = inputs.node.labels.get(L.REGION_LABEL, "")
        zone = inputs.node.labels.get(L.ZONE_LABEL, "")
        subzone = inputs.node.labels.get(L.SUBZONE_LABEL, "")
        if region or zone or subzone:
            workload.locality.CopyFrom(wpb.Locality(region=region, zone=zone, subzone=subzone))
    return wpb.Address(workload=workload)
