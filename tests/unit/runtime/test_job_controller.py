"""Job decisions: completions, parallelism, backoffLimit, back-off delays, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ambientmesh.runtime.controllers.job import decide
from ambientmesh.runtime.controllers.pods import PodSummary

NOW = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def job(status: dict[str, Any] | None = None, policy: str = "Never", **spec: Any) -> dict[str, Any]:
    template = {
        "spec": {"restartPolicy": policy, "containers": [{"name": "c", "command": ["true"]}]}
    }
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "j-1"},
        "spec": {"template": template, **spec},
    }
    if status is not None:
        obj["status"] = status
    return obj


def pod(
    name: str, phase: str, *, finished: datetime | None = None, restarts: int = 0
) -> PodSummary:
    stamp = finished.strftime("%Y-%m-%dT%H:%M:%SZ") if finished else ""
    return PodSummary(name=name, phase=phase, finished_at=stamp, restarts=restarts)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


def test_starts_one_pod_labelled_and_owned() -> None:
    plan = decide(job(), [], now=NOW)
    assert plan.create == 1
    labels = plan.pod["metadata"]["labels"]
    assert labels["batch.kubernetes.io/job-name"] == labels["job-name"] == "pi"
    assert labels["batch.kubernetes.io/controller-uid"] == "j-1"
    assert plan.pod["metadata"]["generateName"] == "pi-"
    assert plan.pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert plan.status["startTime"] == "2026-01-01T00:01:00Z"
    assert plan.status["active"] == 0


def test_complete_when_completions_succeeded() -> None:
    plan = decide(
        job(completions=2, parallelism=2), [pod("a", "Succeeded"), pod("b", "Succeeded")], now=NOW
    )
    assert plan.create == 0
    assert conditions(plan.status)["Complete"]["status"] == "True"
    assert plan.status["succeeded"] == 2
    assert plan.status["completionTime"] == "2026-01-01T00:01:00Z"


def test_parallelism_caps_running_pods_and_remaining_completions_cap_it_further() -> None:
    assert decide(job(completions=5, parallelism=2), [], now=NOW).create == 2
    running = [pod("a", "Running")]
    assert (
        decide(job(completions=2, parallelism=3), [pod("s", "Succeeded"), *running], now=NOW).create
        == 0
    )


def test_fails_when_failures_exceed_the_backoff_limit_and_stops_active_pods() -> None:
    failed = [pod("a", "Failed", finished=NOW), pod("b", "Failed", finished=NOW)]
    plan = decide(job(backoffLimit=1), [*failed, pod("c", "Running")], now=NOW)
    failure = conditions(plan.status)["Failed"]
    assert (failure["reason"], failure["status"]) == ("BackoffLimitExceeded", "True")
    assert plan.delete == ("c",)
    assert plan.create == 0


def test_on_failure_restarts_count_toward_the_limit() -> None:
    plan = decide(
        job(policy="OnFailure", backoffLimit=2), [pod("a", "Running", restarts=3)], now=NOW
    )
    assert conditions(plan.status)["Failed"]["reason"] == "BackoffLimitExceeded"


def test_replacement_waits_for_the_exponential_back_off() -> None:
    failed_at = NOW - timedelta(seconds=5)
    plan = decide(job(), [pod("a", "Failed", finished=failed_at)], now=NOW, backoff=10.0)
    assert (plan.create, plan.requeue_after) == (0, 5.0)
    later = decide(job(), [pod("a", "Failed", finished=failed_at)], now=NOW + timedelta(seconds=5))
    assert later.create == 1
    two = [pod("a", "Failed", finished=failed_at), pod("b", "Failed", finished=failed_at)]
    assert decide(job(), two, now=NOW, backoff=10.0).requeue_after == 15.0  # 20 s after the last


def test_active_deadline() -> None:
    started = {"startTime": "2026-01-01T00:00:00Z"}
    plan = decide(job(started, activeDeadlineSeconds=30), [pod("a", "Running")], now=NOW)
    assert conditions(plan.status)["Failed"]["reason"] == "DeadlineExceeded"
    assert plan.delete == ("a",)
    early = decide(job(started, activeDeadlineSeconds=90), [pod("a", "Running")], now=NOW)
    assert early.requeue_after == 30.0


def test_finished_jobs_stay_finished() -> None:
    done = {
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}
        ],
        "completionTime": "2026-01-01T00:00:10Z",
    }
    plan = decide(job(done), [pod("a", "Succeeded")], now=NOW)
    assert plan.create == 0
    assert plan.status["completionTime"] == "2026-01-01T00:00:10Z"
    assert conditions(plan.status)["Complete"]["lastTransitionTime"] == "2026-01-01T00:00:10Z"


def test_work_queue_jobs_complete_when_one_succeeded_and_none_runs() -> None:
    spec = {"completions": None, "parallelism": 2}
    assert decide(job(**spec), [], now=NOW).create == 2
    still = decide(job(**spec), [pod("a", "Succeeded"), pod("b", "Running")], now=NOW)
    assert (still.create, "Complete" in conditions(still.status)) == (0, False)
    done = decide(job(**spec), [pod("a", "Succeeded"), pod("b", "Succeeded")], now=NOW)
    assert "Complete" in conditions(done.status)
