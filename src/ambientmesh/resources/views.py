"""Typed, frozen views of the core kinds, read from validated objects.

The store keeps objects as JSON, as the API server does; the control plane and the runtime read
the few fields they need through these views. Defaults are Kubernetes' (a Service port's
``targetPort`` defaults to its ``port``, a Pod's service account to ``default``, ...).
Istio and Gateway API kinds have their pydantic models as views: see ``typed.parse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput
from ambientmesh.resources.pod_view import (
    Container,
    ContainerPort,
    EnvVar,
    Meta,
    OwnerReference,
    Pod,
    PodSpec,
    PodTemplate,
    Probe,
    map_of,
    strings_of,
    tuple_of,
)
from ambientmesh.resources.selectors import Selector, from_label_selector

__all__ = [
    "Container",
    "ContainerPort",
    "CoreView",
    "Deployment",
    "EnvVar",
    "Job",
    "Meta",
    "Namespace",
    "Node",
    "NodeAddress",
    "OwnerReference",
    "Pod",
    "PodSpec",
    "PodTemplate",
    "Probe",
    "Service",
    "ServiceAccount",
    "ServicePort",
    "view",
]

# ----------------------------------------------------------------------------- services


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePort:
    port: int
    target_port: int | str
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None
    node_port: int | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> ServicePort:
        target = obj.get("targetPort")
        return cls(
            port=obj["port"],
            target_port=obj["port"] if target in (None, 0, "") else target,
            name=obj.get("name") or None,
            protocol=obj.get("protocol") or "TCP",
            app_protocol=obj.get("appProtocol"),
            node_port=obj.get("nodePort") or None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A Service. ``selector`` is None when the Service has none (endpoints are managed by hand)."""

    meta: Meta
    type: str = "ClusterIP"
    ports: tuple[ServicePort, ...] = ()
    selector: Mapping[str, str] | None = None
    cluster_ip: str | None = None
    cluster_ips: tuple[str, ...] = ()
    internal_traffic_policy: str = "Cluster"
    traffic_distribution: str | None = None
    publish_not_ready_addresses: bool = False
    external_name: str | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Service:
        spec = map_of(obj.get("spec"))
        selector = spec.get("selector")
        return cls(
            meta=Meta.from_obj(obj),
            type=spec.get("type") or "ClusterIP",
            ports=tuple(ServicePort.from_obj(p) for p in spec.get("ports") or ()),
            selector=strings_of(selector) if selector is not None else None,
            cluster_ip=spec.get("clusterIP") or None,
            cluster_ips=tuple(spec.get("clusterIPs") or ()),
            internal_traffic_policy=spec.get("internalTrafficPolicy") or "Cluster",
            traffic_distribution=spec.get("trafficDistribution"),
            publish_not_ready_addresses=bool(spec.get("publishNotReadyAddresses", False)),
            external_name=spec.get("externalName"),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        return self.meta.namespace

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.meta.annotations

    @property
    def headless(self) -> bool:
        """``clusterIP: None``: DNS answers with pod addresses, there is no virtual IP."""
        return self.cluster_ip == "None"


# ----------------------------------------------------------------------------- the rest


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    meta: Meta
    phase: str = "Active"

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Namespace:
        return cls(
            meta=Meta.from_obj(obj), phase=map_of(obj.get("status")).get("phase") or "Active"
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAddress:
    type: str
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    meta: Meta
    pod_cidrs: tuple[str, ...] = ()
    unschedulable: bool = False
    addresses: tuple[NodeAddress, ...] = ()
    ready: bool = False

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Node:
        spec = map_of(obj.get("spec"))
        status = map_of(obj.get("status"))
        cidrs = tuple(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
        conditions = [map_of(c) for c in tuple_of(status.get("conditions"))]
        return cls(
            meta=Meta.from_obj(obj),
            pod_cidrs=cidrs,
            unschedulable=bool(spec.get("unschedulable", False)),
            addresses=tuple(
                NodeAddress(type=map_of(a).get("type", ""), address=map_of(a).get("address", ""))
                for a in tuple_of(status.get("addresses"))
            ),
            ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAccount:
    meta: Meta
    automount_service_account_token: bool | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> ServiceAccount:
        return cls(
            meta=Meta.from_obj(obj),
            automount_service_account_token=obj.get("automountServiceAccountToken"),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        return self.meta.namespace


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    meta: Meta
    replicas: int = 1
    selector: Selector
    template: PodTemplate
    strategy: str = "RollingUpdate"

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Deployment:
        spec = map_of(obj.get("spec"))
        replicas = spec.get("replicas")
        return cls(
            meta=Meta.from_obj(obj),
            replicas=1 if replicas is None else replicas,
            selector=from_label_selector(spec.get("selector")),
            template=PodTemplate.from_obj(map_of(spec.get("template"))),
            strategy=map_of(spec.get("strategy")).get("type") or "RollingUpdate",
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        return self.meta.namespace


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    meta: Meta
    template: PodTemplate
    parallelism: int = 1
    completions: int | None = 1
    backoff_limit: int = 6
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Job:
        spec = map_of(obj.get("spec"))

        def number(name: str, default: int) -> int:
            value = spec.get(name)
            return default if value is None else int(value)

        return cls(
            meta=Meta.from_obj(obj),
            template=PodTemplate.from_obj(map_of(spec.get("template"))),
            parallelism=number("parallelism", 1),
            completions=spec.get("completions", 1),
            backoff_limit=number("backoffLimit", 6),
            active_deadline_seconds=spec.get("activeDeadlineSeconds"),
            ttl_seconds_after_finished=spec.get("ttlSecondsAfterFinished"),
        )

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        return self.meta.namespace


CoreView = Pod | Service | Namespace | Node | ServiceAccount | Deployment | Job

VIEWS: dict[tuple[str, str], Any] = {
    ("", "Pod"): Pod,
    ("", "Service"): Service,
    ("", "Namespace"): Namespace,
    ("", "Node"): Node,
    ("", "ServiceAccount"): ServiceAccount,
    ("apps", "Deployment"): Deployment,
    ("batch", "Job"): Job,
}


def view(obj: Mapping[str, Any]) -> CoreView:
    """The typed view of a validated core object; InvalidInput for any other kind."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    cls = VIEWS.get((group, str(obj.get("kind", ""))))
    if cls is None:
        raise InvalidInput(f"no core view for {obj.get('apiVersion')} {obj.get('kind')}")
    result: CoreView = cls.from_obj(obj)
    return result
