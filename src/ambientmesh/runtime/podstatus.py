"""A pod's `status` as the kubelet reports it, from the state of its containers; pure.

Phase (Kubernetes' rules): Pending until every container has started at least once (or while
init containers run), Succeeded or Failed once every container has finished for good (all
exit codes 0, or not), Running otherwise. Conditions PodScheduled, Initialized, ContainersReady
and Ready, each keeping its lastTransitionTime while its value stays the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ambientmesh.runtime.containers import ContainerStatus, State

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL_PHASES = frozenset({SUCCEEDED, FAILED})


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerFacts:
    """One container as the kubelet sees it."""

    name: str
    image: str = ""
    status: ContainerStatus | None = None  # None: not created yet
    ready: bool = False
    done: bool = False  # finished for good: the restart policy will not start it again
    last_termination: ContainerStatus | None = None
    config_error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFacts:
    containers: Sequence[ContainerFacts]
    init_containers: Sequence[ContainerFacts] = ()
    pod_ip: str | None = None
    host_ip: str | None = None
    start_time: datetime | None = None
    deleting: bool = False
    waiting_message: str = ""  # e.g. why the pod's network could not be created yet


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def phase(facts: PodFacts) -> str:
    for init in facts.init_containers:
        if init.done and _exit_code(init) != 0:
            return FAILED
        if not (init.done and _exit_code(init) == 0):
            return PENDING
    containers = facts.containers
    if containers and all(c.done for c in containers):
        return SUCCEEDED if all(_exit_code(c) == 0 for c in containers) else FAILED
    if any(c.status is None or c.status.started_at is None for c in containers if not c.done):
        return PENDING
    return RUNNING


def pod_status(
    facts: PodFacts, *, previous: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The whole `status` object; `previous` supplies unchanged conditions' transition times."""
    current = phase(facts)
    status: dict[str, Any] = {
        "phase": current,
        "conditions": _conditions(facts, current, previous or {}, now),
    }
    if facts.host_ip:
        status["hostIP"] = facts.host_ip
        status["hostIPs"] = [{"ip": facts.host_ip}]
    if facts.pod_ip:
        status["podIP"] = facts.pod_ip
        status["podIPs"] = [{"ip": facts.pod_ip}]
    if facts.start_time is not None:
        status["startTime"] = rfc3339(facts.start_time)
    if facts.init_containers:
        status["initContainerStatuses"] = [
            _container_status(c, facts.waiting_message) for c in facts.init_containers
        ]
    status["containerStatuses"] = [
        _container_status(c, facts.waiting_message) for c in facts.containers
    ]
    return status


def _exit_code(container: ContainerFacts) -> int | None:
    return None if container.status is None else container.status.exit_code


def _conditions(
    facts: PodFacts, current: str, previous: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, Mapping)}
    uninitialized = [c.name for c in facts.init_containers if not (c.done and _exit_code(c) == 0)]
    unready = [c.name for c in facts.containers if not c.ready or facts.deleting]
    if current in TERMINAL_PHASES:
        ready = ("False", "PodCompleted", "")
    elif unready:
        ready = (
            "False",
            "ContainersNotReady",
            f"containers with unready status: [{' '.join(unready)}]",
        )
    else:
        ready = ("True", "", "")
    if uninitialized and current not in TERMINAL_PHASES:
        initialized = (
            "False",
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(uninitialized)}]",
        )
    elif current in TERMINAL_PHASES and facts.init_containers:
        initialized = ("True", "PodCompleted", "")
    else:
        initialized = ("True", "", "")
    wanted = [
        ("PodScheduled", ("True", "", "")),
        ("Initialized", initialized),
        ("ContainersReady", ready),
        ("Ready", ready),
    ]
    return [_condition(kind, value, before.get(kind), now) for kind, value in wanted]


def _condition(
    kind: str, value: tuple[str, str, str], before: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    status, reason, message = value
    unchanged = before is not None and before.get("status") == status
    since = before.get("lastTransitionTime") if unchanged and before else None
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since or rfc3339(now),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _container_status(container: ContainerFacts, waiting_message: str) -> dict[str, Any]:
    status = container.status
    entry: dict[str, Any] = {
        "name": container.name,
        "image": container.image,
        "imageID": "",
        "ready": container.ready,
        "restartCount": status.restart_count if status else 0,
        "started": bool(status and status.state is State.RUNNING),
        "state": _state(container, waiting_message),
        "lastState": {},
    }
    if status is not None and status.pid is not None:
        # No container runtime: the ID names the process, which is what there is to find.
        entry["containerID"] = f"process://{status.pid}"
    last = container.last_termination
    if last is not None and status is not None and status.state is not State.TERMINATED:
        entry["lastState"] = {"terminated": _terminated(last)}
    return entry


def _state(container: ContainerFacts, waiting_message: str) -> dict[str, Any]:
    status = container.status
    if container.config_error:
        return {
            "waiting": {"reason": "CreateContainerConfigError", "message": container.config_error}
        }
    if status is None:
        waiting = {"reason": "ContainerCreating"}
        if waiting_message:
            waiting["message"] = waiting_message
        return {"waiting": waiting}
    if status.state is State.RUNNING:
        started = status.started_at
        return {"running": {"startedAt": rfc3339(started) if started else None}}
    if status.state is State.TERMINATED:
        return {"terminated": _terminated(status)}
    waiting = {"reason": status.reason or "ContainerCreating"}
    if status.reason == "CrashLoopBackOff" and status.restart_delay is not None:
        waiting["message"] = (
            f"back-off {status.restart_delay:g}s restarting failed container={container.name}"
        )
    elif status.message:
        waiting["message"] = status.message
    return {"waiting": waiting}


def _terminated(status: ContainerStatus) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": status.exit_code if status.exit_code is not None else 0,
        "reason": "Completed" if status.exit_code == 0 else (_final_reason(status)),
    }
    if status.message:
        terminated["message"] = status.message
    if status.started_at is not None:
        terminated["startedAt"] = rfc3339(status.started_at)
    if status.finished_at is not None:
        terminated["finishedAt"] = rfc3339(status.finished_at)
    return terminated


def _final_reason(status: ContainerStatus) -> str:
    # A status caught while waiting to restart carries the back-off reason; the run ended in Error.
    if status.reason in ("StartError", "Error"):
        return status.reason
    return "Error"
