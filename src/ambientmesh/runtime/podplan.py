"""What the kubelet runs for a pod: containers as processes, their probes and policies; pure.

A container's `command` + `args` become the process's argv and its `env` the environment, with
Kubernetes' `$(VAR)` expansion and the downward API (`valueFrom.fieldRef`). The image is not
pulled or run: the local runtime has no images, so a container without a command cannot run.
A container that cannot be run this way gets `CreateContainerConfigError` and a message, like a
Kubernetes container whose configuration is wrong; the pod's other containers still run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.probes import Probe, parse_probe
from ambientmesh.runtime.processes import DEFAULT_GRACE, ContainerSpec
from ambientmesh.runtime.restarts import RestartPolicy

CONFIG_ERROR = "CreateContainerConfigError"
_PROBE_DEFAULTED = ("periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold")
_UNSUPPORTED_PROBES = ("livenessProbe", "startupProbe")


@dataclass(frozen=True, slots=True, kw_only=True)
class DownwardFacts:
    """What `valueFrom.fieldRef` can refer to, known once the pod has a node and an address."""

    pod_ip: str
    host_ip: str
    node_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerPlan:
    """One container; `spec` is None when it cannot run, and `error` says why."""

    name: str
    image: str = ""
    spec: ContainerSpec | None = None
    error: str = ""
    readiness: Probe | None = None
    ignored: tuple[str, ...] = ()  # fields the local runtime does not honour


@dataclass(frozen=True, slots=True, kw_only=True)
class PodPlan:
    containers: tuple[ContainerPlan, ...]
    init_containers: tuple[ContainerPlan, ...] = ()
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    grace: float = DEFAULT_GRACE
    service_account: str = "default"
    host_network: bool = False

    @property
    def images(self) -> tuple[str, ...]:
        seen = (c.image for c in (*self.init_containers, *self.containers) if c.image)
        return tuple(dict.fromkeys(seen))


def plan_pod(pod: Mapping[str, Any], facts: DownwardFacts) -> PodPlan:
    """The plan for a validated Pod object."""
    spec = _map(pod.get("spec"))
    grace = spec.get("terminationGracePeriodSeconds")
    return PodPlan(
        containers=tuple(_container(c, pod, facts) for c in _maps(spec.get("containers"))),
        init_containers=tuple(_container(c, pod, facts) for c in _maps(spec.get("initContainers"))),
        restart_policy=RestartPolicy.parse(spec.get("restartPolicy") or "Always"),
        grace=DEFAULT_GRACE if grace is None else float(grace),
        service_account=spec.get("serviceAccountName") or spec.get("serviceAccount") or "default",
        host_network=bool(spec.get("hostNetwork", False)),
    )


def images_of(objects: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """{image: ["Deployment default/web", ...]} for every container image in these manifests."""
    found: dict[str, list[str]] = {}
    for obj in objects:
        kind = obj.get("kind")
        spec = _map(obj.get("spec"))
        pod_spec = spec if kind == "Pod" else _map(_map(spec.get("template")).get("spec"))
        metadata = _map(obj.get("metadata"))
        where = f"{kind} {metadata.get('namespace') or 'default'}/{metadata.get('name')}"
        for container in (
            *_maps(pod_spec.get("initContainers")),
            *_maps(pod_spec.get("containers")),
        ):
            image = container.get("image")
            if isinstance(image, str) and image and where not in found.setdefault(image, []):
                found[image].append(where)
    return found


def image_warnings(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per image in these manifests, saying it will not be used (for `up`, `apply`)."""
    return [
        f"Warning: image {image} is not used: the local runtime runs each container's "
        f"command and args on this host ({', '.join(users)})"
        for image, users in images_of(objects).items()
    ]


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known names are replaced, `$$` is a literal `$`,
    unknown references and anything malformed stay as written."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        follower = text[index + 1] if index + 1 < len(text) else ""
        if char != "$" or not follower:
            out.append(char)
            index += 1
        elif follower == "$":
            out.append("$")
            index += 2
        elif follower == "(" and (end := text.find(")", index + 2)) != -1:
            name = text[index + 2 : end]
            out.append(variables.get(name, text[index : end + 1]))
            index = end + 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _container(
    obj: Mapping[str, Any], pod: Mapping[str, Any], facts: DownwardFacts
) -> ContainerPlan:
    name = str(obj.get("name", ""))
    image = obj.get("image") if isinstance(obj.get("image"), str) else ""
    ignored = tuple(field for field in _UNSUPPORTED_PROBES if obj.get(field))
    try:
        env = _environment(obj.get("env"), pod, facts)
        spec = ContainerSpec.from_kubernetes(
            name=name,
            command=[expand(part, env) for part in _strings(obj.get("command"))],
            args=[expand(part, env) for part in _strings(obj.get("args"))],
            env=env,
            working_dir=obj.get("workingDir") or None,
        )
        readiness = _readiness(obj)
    except InvalidInput as error:
        return ContainerPlan(name=name, image=image or "", error=error.message, ignored=ignored)
    return ContainerPlan(
        name=name, image=image or "", spec=spec, readiness=readiness, ignored=ignored
    )


def _environment(items: Any, pod: Mapping[str, Any], facts: DownwardFacts) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in _maps(items):
        name = str(item.get("name"))
        if "valueFrom" in item and item["valueFrom"] is not None:
            env[name] = _value_from(name, _map(item["valueFrom"]), pod, facts)
        else:
            # Earlier variables only, as Kubernetes expands them in order.
            env[name] = expand(str(item.get("value") or ""), env)
    return env


def _value_from(
    name: str, source: Mapping[str, Any], pod: Mapping[str, Any], facts: DownwardFacts
) -> str:
    field_ref = source.get("fieldRef")
    if not isinstance(field_ref, Mapping):
        kinds = ", ".join(sorted(source)) or "nothing"
        raise InvalidInput(
            f"env {name}: valueFrom.{kinds} is not supported by the local runtime "
            "(only valueFrom.fieldRef is)"
        )
    path = str(field_ref.get("fieldPath", ""))
    value = _field(path, pod, facts)
    if value is None:
        raise InvalidInput(f"env {name}: unsupported fieldRef.fieldPath {path!r}")
    return value


def _field(path: str, pod: Mapping[str, Any], facts: DownwardFacts) -> str | None:
    metadata = _map(pod.get("metadata"))
    spec = _map(pod.get("spec"))
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace") or "default",
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": facts.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": facts.pod_ip,
        "status.podIPs": facts.pod_ip,
        "status.hostIP": facts.host_ip,
        "status.hostIPs": facts.host_ip,
    }
    if path in simple:
        value = simple[path]
        return "" if value is None else str(value)
    for prefix, section in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(f"{prefix}['") and path.endswith("']"):
            return str(_map(metadata.get(section)).get(path[len(prefix) + 2 : -2], ""))
    return None


def _readiness(obj: Mapping[str, Any]) -> Probe | None:
    probe = obj.get("readinessProbe")
    if not isinstance(probe, Mapping):
        return None
    # The API server turns zero timings into the defaults; the store keeps what was written.
    cleaned = {k: v for k, v in probe.items() if not (k in _PROBE_DEFAULTED and v == 0)}
    named = {
        str(port["name"]): int(port["containerPort"])
        for port in _maps(obj.get("ports"))
        if port.get("name") and port.get("containerPort")
    }
    return parse_probe(cleaned, named_ports=named)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maps(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(value: Any) -> Sequence[str]:
    return [str(item) for item in value] if isinstance(value, list) else []
