"""Pod phase and conditions from container states, as the kubelet reports them."""

from __future__ import annotations

from datetime import UTC, datetime

from ambientmesh.runtime.containers import ContainerStatus, State
from ambientmesh.runtime.podstatus import ContainerFacts, PodFacts, phase, pod_status

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def running(name: str = "app", *, ready: bool = True, restarts: int = 0) -> ContainerFacts:
    status = ContainerStatus(
        name=name, state=State.RUNNING, pid=42, started_at=T0, restart_count=restarts
    )
    return ContainerFacts(name=name, image="img", status=status, ready=ready)


def finished(name: str = "app", code: int = 0) -> ContainerFacts:
    status = ContainerStatus(
        name=name, state=State.TERMINATED, reason="Completed" if code == 0 else "Error",
        exit_code=code, started_at=T0, finished_at=T1,
    )  # fmt: skip
    return ContainerFacts(name=name, status=status, done=True)


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_phases() -> None:
    creating = ContainerFacts(name="app")
    assert phase(PodFacts(containers=[creating])) == "Pending"
    assert phase(PodFacts(containers=[running()])) == "Running"
    assert phase(PodFacts(containers=[running(), creating])) == "Pending"
    assert phase(PodFacts(containers=[finished(), finished("b")])) == "Succeeded"
    assert phase(PodFacts(containers=[finished(), finished("b", 2)])) == "Failed"
    # One finished for good, one still running: Running.
    assert phase(PodFacts(containers=[finished(), running("b")])) == "Running"


def test_init_containers_gate_the_pod() -> None:
    init_running = running("init")
    assert (
        phase(PodFacts(containers=[ContainerFacts(name="app")], init_containers=[init_running]))
        == "Pending"
    )
    assert phase(PodFacts(containers=[running()], init_containers=[finished("init")])) == "Running"
    assert (
        phase(
            PodFacts(containers=[ContainerFacts(name="app")], init_containers=[finished("init", 1)])
        )
        == "Failed"
    )


def test_crash_loop_keeps_running_phase_and_reports_back_off() -> None:
    waiting = ContainerStatus(
        name="app", state=State.WAITING, reason="CrashLoopBackOff", restart_delay=20.0,
        exit_code=1, restart_count=2, started_at=T0,
    )  # fmt: skip
    last = ContainerStatus(
        name="app", state=State.TERMINATED, reason="Error", exit_code=1, started_at=T0,
        finished_at=T1,
    )  # fmt: skip
    facts = PodFacts(containers=[ContainerFacts(name="app", status=waiting, last_termination=last)])
    status = pod_status(facts, previous=None, now=T1)
    assert status["phase"] == "Running"
    entry = status["containerStatuses"][0]
    assert entry["state"] == {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": "back-off 20s restarting failed container=app",
        }
    }
    assert entry["lastState"]["terminated"]["exitCode"] == 1
    assert entry["restartCount"] == 2


def test_full_status_of_a_ready_pod() -> None:
    facts = PodFacts(
        containers=[running()], pod_ip="10.244.1.7", host_ip="10.244.1.1", start_time=T0
    )
    status = pod_status(facts, previous=None, now=T1)
    assert status["podIP"] == "10.244.1.7"
    assert status["podIPs"] == [{"ip": "10.244.1.7"}]
    assert status["hostIP"] == "10.244.1.1"
    assert status["startTime"] == "2026-01-01T00:00:00Z"
    assert {kind: c["status"] for kind, c in conditions(status).items()} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True",
    }  # fmt: skip
    entry = status["containerStatuses"][0]
    assert entry["state"] == {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    assert entry["containerID"] == "process://42"
    assert entry["ready"] is True
    assert entry["started"] is True


def test_unready_container_is_named_and_transition_times_are_kept() -> None:
    first = pod_status(PodFacts(containers=[running(ready=False)]), previous=None, now=T0)
    ready = conditions(first)["Ready"]
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [app]"
    later = pod_status(PodFacts(containers=[running(ready=False)]), previous=first, now=T1)
    assert conditions(later)["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    flipped = pod_status(PodFacts(containers=[running()]), previous=first, now=T1)
    assert conditions(flipped)["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:05Z"
    assert conditions(flipped)["PodScheduled"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_deleting_pod_is_not_ready_and_finished_pod_is_completed() -> None:
    deleting = pod_status(PodFacts(containers=[running()], deleting=True), previous=None, now=T0)
    assert conditions(deleting)["Ready"]["status"] == "False"
    done = pod_status(PodFacts(containers=[finished()]), previous=None, now=T0)
    assert conditions(done)["Ready"]["reason"] == "PodCompleted"
    assert done["containerStatuses"][0]["state"]["terminated"] == {
        "exitCode": 0, "reason": "Completed",
        "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:05Z",
    }  # fmt: skip


def test_config_error_and_sandbox_message_show_as_waiting() -> None:
    broken = ContainerFacts(name="app", config_error="no command")
    status = pod_status(PodFacts(containers=[broken]), previous=None, now=T0)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "CreateContainerConfigError", "message": "no command"}
    }
    creating = PodFacts(containers=[ContainerFacts(name="app")], waiting_message="no address left")
    status = pod_status(creating, previous=None, now=T0)
    assert status["containerStatuses"][0]["state"]["waiting"] == {
        "reason": "ContainerCreating",
        "message": "no address left",
    }
