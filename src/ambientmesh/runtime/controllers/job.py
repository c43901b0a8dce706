"""The Job controller's decision: pods to start or stop, when to look again, the status; pure.

Kubernetes' rules for non-indexed Jobs: keep `min(parallelism, completions - succeeded)` pods
running; the Job is Complete once `completions` pods succeeded (or, without `completions`,
once one succeeded and none is left running); it Fails when failures exceed `backoffLimit`
(failed pods, plus container restarts under `restartPolicy: OnFailure`) or it ran longer than
`activeDeadlineSeconds`, and its running pods are then deleted. A failed pod is replaced after
an exponential back-off (10 s, 20 s, ... at most 6 minutes in Kubernetes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ambientmesh.backoff import Backoff
from ambientmesh.runtime.controllers.pods import (
    PodSummary,
    condition,
    pod_from_template,
    with_times,
)

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
MAX_BACKOFF = 360.0


@dataclass(frozen=True, slots=True, kw_only=True)
class JobPlan:
    create: int = 0
    pod: dict[str, Any] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None  # look again then (back-off or deadline)


def decide(
    job: Mapping[str, Any],
    pods: Sequence[PodSummary],
    *,
    now: datetime,
    backoff: float = 10.0,
) -> JobPlan:
    """What to do for `job`, given the pods it owns; `backoff` is the first re-creation delay."""
    spec = _map(job.get("spec"))
    previous = _map(job.get("status"))
    counts = _count(spec, pods)
    started = _parse(previous.get("startTime")) or now
    deadline = None
    if spec.get("activeDeadlineSeconds") is not None:
        deadline = started + timedelta(seconds=int(spec["activeDeadlineSeconds"]))
    outcome = _finished(previous) or _outcome(spec, counts, now=now, deadline=deadline)
    create, delete, requeue = 0, [pod.name for pod in counts.active], None
    if outcome is None:
        create, delete, requeue = _progress(spec, counts, pods, now=now, backoff=backoff)
        if deadline is not None:
            left = (deadline - now).total_seconds()
            requeue = left if requeue is None else min(requeue, left)
    status = _status(previous, counts, started=started, outcome=outcome, now=now)
    return JobPlan(
        create=create, pod=_pod(job), delete=tuple(delete), status=status, requeue_after=requeue
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Counts:
    active: list[PodSummary]
    succeeded: int
    failed: int  # failed pods
    failures: int  # what counts against backoffLimit


def _count(spec: Mapping[str, Any], pods: Sequence[PodSummary]) -> _Counts:
    active = [pod for pod in pods if pod.active]
    failed = sum(1 for pod in pods if pod.phase == "Failed")
    return _Counts(
        active=active,
        succeeded=sum(1 for pod in pods if pod.phase == "Succeeded"),
        failed=failed,
        failures=failed + _restarts(spec, active),
    )


def _outcome(
    spec: Mapping[str, Any], counts: _Counts, *, now: datetime, deadline: datetime | None
) -> tuple[str, str, str] | None:
    limit = int(spec["backoffLimit"]) if spec.get("backoffLimit") is not None else 6
    if counts.failures > limit:
        return ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    if deadline is not None and now >= deadline:
        return ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
    if _complete(spec.get("completions"), counts.succeeded, counts.active):
        return ("Complete", "", "")
    return None


def _progress(
    spec: Mapping[str, Any],
    counts: _Counts,
    pods: Sequence[PodSummary],
    *,
    now: datetime,
    backoff: float,
) -> tuple[int, list[str], float | None]:
    """(pods to create, pods to delete, when to look again) for a Job still running."""
    completions = spec.get("completions")
    parallelism = int(spec["parallelism"]) if spec.get("parallelism") is not None else 1
    if completions is None:
        # Work-queue Jobs start nothing new once one pod succeeded.
        wanted = 0 if counts.succeeded else parallelism
    else:
        wanted = max(0, min(parallelism, int(completions) - counts.succeeded))
    delete = [pod.name for pod in counts.active[wanted:]]
    missing = max(0, wanted - len(counts.active))
    create, requeue = _create_after_backoff(missing, pods, counts.failed, now, backoff)
    return create, delete, requeue


def _pod(job: Mapping[str, Any]) -> dict[str, Any]:
    metadata = _map(job.get("metadata"))
    name, uid = str(metadata.get("name")), str(metadata.get("uid") or "")
    labels = dict.fromkeys(JOB_NAME_LABELS, name)
    labels.update(dict.fromkeys(CONTROLLER_UID_LABELS, uid))
    return pod_from_template(job, generate_name=f"{name}-", extra_labels=labels)


def _complete(completions: Any, succeeded: int, active: list[PodSummary]) -> bool:
    if completions is None:
        return succeeded > 0 and not active
    return succeeded >= int(completions)


def _restarts(spec: Mapping[str, Any], active: list[PodSummary]) -> int:
    policy = _map(_map(spec.get("template")).get("spec")).get("restartPolicy")
    # Under OnFailure a failing container restarts in place; Kubernetes counts those too.
    return sum(pod.restarts for pod in active) if policy == "OnFailure" else 0


def _create_after_backoff(
    missing: int, pods: Sequence[PodSummary], failed: int, now: datetime, backoff: float
) -> tuple[int, float | None]:
    if missing == 0 or failed == 0:
        return missing, None
    delay = Backoff(initial=min(backoff, MAX_BACKOFF), maximum=MAX_BACKOFF).base(failed)
    times = [_parse(pod.finished_at) for pod in pods if pod.phase == "Failed"]
    last = max((moment for moment in times if moment is not None), default=None)
    if last is None:
        return missing, None
    wait = (last + timedelta(seconds=delay) - now).total_seconds()
    return (missing, None) if wait <= 0 else (0, wait)


def _status(
    previous: Mapping[str, Any],
    counts: _Counts,
    *,
    started: datetime,
    outcome: tuple[str, str, str] | None,
    now: datetime,
) -> dict[str, Any]:
    stamp = _format(now)
    status: dict[str, Any] = {
        "startTime": _format(started),
        "active": len(counts.active),
        "ready": sum(1 for pod in counts.active if pod.ready),
        "succeeded": counts.succeeded,
        "failed": counts.failed,
    }
    if outcome is not None:
        kind, reason, message = outcome
        if kind == "Complete":
            status["completionTime"] = previous.get("completionTime") or stamp
        status["conditions"] = with_times(
            [condition(kind, True, reason=reason, message=message)],
            previous.get("conditions"),
            stamp,
            probe_field="lastProbeTime",
        )
    return status


def _finished(previous: Mapping[str, Any]) -> tuple[str, str, str] | None:
    for raw in previous.get("conditions") or []:
        item = _map(raw)
        if item.get("type") in ("Complete", "Failed") and item.get("status") == "True":
            return str(item["type"]), str(item.get("reason", "")), str(item.get("message", ""))
    return None


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
