"""Typed, frozen views of Pods and their parts (also the pod template of workloads)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

_EMPTY: Mapping[str, str] = MappingProxyType({})


def map_of(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def strings_of(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not value:
        return _EMPTY
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def tuple_of(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerReference:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> OwnerReference:
        return cls(
            api_version=obj.get("apiVersion", ""),
            kind=obj.get("kind", ""),
            name=obj.get("name", ""),
            uid=obj.get("uid", ""),
            controller=bool(obj.get("controller", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """The ObjectMeta fields consumers read."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    resource_version: str | None = None
    generation: int | None = None
    deletion_timestamp: str | None = None
    owner_references: tuple[OwnerReference, ...] = ()

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Meta:
        meta = map_of(obj.get("metadata"))
        return cls(
            name=meta.get("name", ""),
            namespace=meta.get("namespace"),
            uid=meta.get("uid"),
            labels=strings_of(meta.get("labels")),
            annotations=strings_of(meta.get("annotations")),
            resource_version=meta.get("resourceVersion"),
            generation=meta.get("generation"),
            deletion_timestamp=meta.get("deletionTimestamp"),
            owner_references=tuple(
                OwnerReference.from_obj(map_of(r)) for r in tuple_of(meta.get("ownerReferences"))
            ),
        )


# ----------------------------------------------------------------------------- pods


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerPort:
    container_port: int
    name: str | None = None
    protocol: str = "TCP"
    host_port: int | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> ContainerPort:
        return cls(
            container_port=obj["containerPort"],
            name=obj.get("name"),
            protocol=obj.get("protocol") or "TCP",
            host_port=obj.get("hostPort"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvVar:
    """A literal environment variable; ``value`` is empty for ones set through ``valueFrom``."""

    name: str
    value: str = ""


ProbeHandler = Literal["exec", "httpGet", "tcpSocket", "grpc"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One probe: its handler and, depending on it, the command, port, path or gRPC service."""

    handler: ProbeHandler
    command: tuple[str, ...] = ()
    port: int | str | None = None
    path: str = "/"
    scheme: str = "HTTP"
    host: str | None = None
    http_headers: tuple[tuple[str, str], ...] = ()
    grpc_service: str | None = None
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Probe:
        handler: ProbeHandler = next(
            (h for h in ("exec", "httpGet", "tcpSocket", "grpc") if obj.get(h) is not None), "exec"
        )
        detail = map_of(obj.get(handler))
        # Kubernetes treats 0 as "use the default" for the timing fields.
        return cls(
            handler=handler,
            command=tuple(detail.get("command") or ()),
            port=detail.get("port"),
            path=detail.get("path") or "/",
            scheme=detail.get("scheme") or "HTTP",
            host=detail.get("host"),
            http_headers=tuple((h["name"], h["value"]) for h in detail.get("httpHeaders") or ()),
            grpc_service=detail.get("service"),
            initial_delay_seconds=obj.get("initialDelaySeconds") or 0,
            period_seconds=obj.get("periodSeconds") or 10,
            timeout_seconds=obj.get("timeoutSeconds") or 1,
            success_threshold=obj.get("successThreshold") or 1,
            failure_threshold=obj.get("failureThreshold") or 3,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    name: str
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    working_dir: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Container:
        def probe(name: str) -> Probe | None:
            return Probe.from_obj(obj[name]) if obj.get(name) else None

        return cls(
            name=obj.get("name", ""),
            image=obj.get("image") or "",
            command=tuple(obj.get("command") or ()),
            args=tuple(obj.get("args") or ()),
            env=tuple(
                EnvVar(name=e["name"], value=e.get("value") or "") for e in obj.get("env") or ()
            ),
            working_dir=obj.get("workingDir"),
            ports=tuple(ContainerPort.from_obj(p) for p in obj.get("ports") or ()),
            readiness_probe=probe("readinessProbe"),
            liveness_probe=probe("livenessProbe"),
            startup_probe=probe("startupProbe"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSpec:
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    restart_policy: str = "Always"
    node_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    service_account: str = "default"
    host_network: bool = False
    termination_grace_period_seconds: int = 30

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> PodSpec:
        grace = obj.get("terminationGracePeriodSeconds")
        return cls(
            containers=tuple(Container.from_obj(c) for c in obj.get("containers") or ()),
            init_containers=tuple(Container.from_obj(c) for c in obj.get("initContainers") or ()),
            restart_policy=obj.get("restartPolicy") or "Always",
            node_name=obj.get("nodeName") or None,
            node_selector=strings_of(obj.get("nodeSelector")),
            # serviceAccount is the deprecated spelling; Kubernetes still honours it.
            service_account=obj.get("serviceAccountName") or obj.get("serviceAccount") or "default",
            host_network=bool(obj.get("hostNetwork", False)),
            termination_grace_period_seconds=30 if grace is None else grace,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PodTemplate:
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    spec: PodSpec = field(default_factory=PodSpec)

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> PodTemplate:
        meta = map_of(obj.get("metadata"))
        return cls(
            labels=strings_of(meta.get("labels")),
            annotations=strings_of(meta.get("annotations")),
            spec=PodSpec.from_obj(map_of(obj.get("spec"))),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    meta: Meta
    spec: PodSpec
    phase: str | None = None
    pod_ip: str | None = None
    pod_ips: tuple[str, ...] = ()
    ready: bool = False

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Pod:
        status = map_of(obj.get("status"))
        conditions = [map_of(c) for c in tuple_of(status.get("conditions"))]
        return cls(
            meta=Meta.from_obj(obj),
            spec=PodSpec.from_obj(map_of(obj.get("spec"))),
            phase=status.get("phase"),
            pod_ip=status.get("podIP"),
            pod_ips=tuple(map_of(ip).get("ip", "") for ip in tuple_of(status.get("podIPs"))),
            ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        )

    # The fields most callers want, without going through .meta and .spec.
    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        return self.meta.namespace

    @property
    def uid(self) -> str | None:
        return self.meta.uid

    @property
    def labels(self) -> Mapping[str, str]:
        return self.meta.labels

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.meta.annotations

    @property
    def owner_references(self) -> tuple[OwnerReference, ...]:
        return self.meta.owner_references

    @property
    def deletion_timestamp(self) -> str | None:
        return self.meta.deletion_timestamp

    @property
    def containers(self) -> tuple[Container, ...]:
        return self.spec.containers

    @property
    def node_name(self) -> str | None:
        return self.spec.node_name

    @property
    def service_account(self) -> str:
        return self.spec.service_account

    @property
    def restart_policy(self) -> str:
        return self.spec.restart_policy

    @property
    def node_selector(self) -> Mapping[str, str]:
        return self.spec.node_selector
