"""Container processes in pod namespaces: environment, logs, restarts with backoff, stopping."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ambientmesh.backoff import Backoff
from ambientmesh.runtime.containers import Container, ContainerStatus, State
from ambientmesh.runtime.network import PodNetwork
from ambientmesh.runtime.processes import ContainerSpec, PodContext, previous_log
from ambientmesh.runtime.restarts import RestartPolicy
from ambientmesh.testing.clock import FakeClock
from tests.namespaced.conftest import DEADLINE, Cluster

pytestmark = pytest.mark.root


def context(pod: PodNetwork) -> PodContext:
    return PodContext(
        name=pod.name,
        namespace=pod.namespace,
        ip=pod.ip,
        node_name=pod.node,
        netns=pod.netns,
        service_account="web",
    )


def shell(script: str, **env: str) -> ContainerSpec:
    return ContainerSpec.from_kubernetes(name="main", command=["sh", "-c"], args=[script], env=env)


async def run_to_end(container: Container) -> ContainerStatus:
    async with asyncio.timeout(DEADLINE):
        return await container.run()


async def test_container_runs_in_its_pod_with_env_cwd_and_log(
    cluster: Cluster, tmp_path: Path
) -> None:
    a1 = cluster.pods["a1"]
    script = (
        'echo "$POD_NAME $POD_NAMESPACE $POD_IP $NODE_NAME $SERVICE_ACCOUNT $EXTRA"; pwd; '
        "grep nameserver /etc/resolv.conf; ip -o -4 address show dev eth0 >&2"
    )
    spec = ContainerSpec.from_kubernetes(
        name="main",
        command=["sh", "-c"],
        args=[script],
        env={"EXTRA": "x y"},
        working_dir=str(tmp_path),
    )
    log = tmp_path / "main.log"
    container = Container(spec, context(a1), log_path=log, restart_policy=RestartPolicy.NEVER)
    status = await run_to_end(container)
    assert (status.state, status.exit_code, status.reason, status.restart_count) == (
        State.TERMINATED, 0, "Completed", 0,
    )  # fmt: skip
    lines = log.read_text().splitlines()
    assert lines[0] == f"a1 default {a1.ip} node-1 web x y"
    assert lines[1] == str(tmp_path)
    assert (
        lines[2] == "nameserver 10.96.0.10"
    )  # /etc/netns/<pod>/resolv.conf, as ip netns exec binds it
    assert f"inet {a1.ip}/32" in lines[3]  # stderr, in the pod's namespace


async def test_failing_container_restarts_with_doubling_backoff(
    cluster: Cluster, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    # Fails four times, then succeeds.
    script = (
        f"n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}; "
        "echo run $n; [ $n -ge 5 ]"
    )
    seen: list[ContainerStatus] = []
    clock = FakeClock(autojump=True)
    container = Container(
        shell(script),
        context(cluster.pods["a1"]),
        log_path=tmp_path / "main.log",
        restart_policy=RestartPolicy.ON_FAILURE,
        backoff=Backoff(initial=10, maximum=40),
        clock=clock,
        on_status=seen.append,
    )
    final = await run_to_end(container)
    delays = [s.restart_delay for s in seen if s.reason == "CrashLoopBackOff" and s.restart_delay]
    assert delays == [10, 20, 40, 40]
    assert clock.monotonic() >= 110
    assert (final.state, final.reason, final.exit_code, final.restart_count) == (
        State.TERMINATED,
        "Completed",
        0,
        4,
    )
    assert [s.exit_code for s in seen if s.reason == "Error"] == [1, 1, 1, 1]
    assert (tmp_path / "main.log").read_text() == "run 5\n"
    assert previous_log(tmp_path / "main.log").read_text() == "run 4\n"


async def test_always_restarts_even_after_success_until_stopped(
    cluster: Cluster, tmp_path: Path
) -> None:
    container = Container(
        shell("true"),
        context(cluster.pods["a1"]),
        log_path=tmp_path / "main.log",
        restart_policy=RestartPolicy.ALWAYS,
        backoff=Backoff(initial=1, maximum=1),
        clock=FakeClock(autojump=True),
    )
    async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as group:
        runner = group.create_task(container.run())
        await container.wait_for(lambda s: s.restart_count >= 2)
        await container.stop(grace=1)
    assert runner.result().state == State.TERMINATED


async def test_never_policy_reports_the_exit_code(cluster: Cluster, tmp_path: Path) -> None:
    container = Container(
        shell("exit 7"),
        context(cluster.pods["b1"]),
        log_path=tmp_path / "l.log",
        restart_policy=RestartPolicy.NEVER,
    )
    status = await run_to_end(container)
    assert (status.state, status.reason, status.exit_code, status.restart_count) == (
        State.TERMINATED,
        "Error",
        7,
        0,
    )


async def test_missing_executable_is_a_start_error(cluster: Cluster, tmp_path: Path) -> None:
    spec = ContainerSpec.from_kubernetes(name="main", command=["no-such-program-ambientmesh"])
    container = Container(
        spec,
        context(cluster.pods["a1"]),
        log_path=tmp_path / "l.log",
        restart_policy=RestartPolicy.NEVER,
    )
    status = await run_to_end(container)
    assert (status.state, status.reason) == (State.TERMINATED, "StartError")
    assert "not found in $PATH" in status.message


async def line_from(fifo: Path) -> bytes:
    """The first line a container writes to the FIFO `fifo`: its "I am set up" signal."""
    # O_RDWR: reads never see end-of-file before the container opens the FIFO for writing.
    pipe = os.fdopen(os.open(fifo, os.O_RDWR | os.O_NONBLOCK), "rb", buffering=0)
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        return await reader.readline()
    finally:
        transport.close()


async def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(
    cluster: Cluster, tmp_path: Path
) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)  # before the container starts, or its `echo >` would make a plain file
    clock = FakeClock(autojump=True)
    container = Container(
        shell(f'trap "" TERM; echo ready > {fifo}; sleep 60'),
        context(cluster.pods["a1"]),
        log_path=tmp_path / "l.log",
        restart_policy=RestartPolicy.ALWAYS,
        clock=clock,
    )
    async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as group:
        runner = group.create_task(container.run())
        assert await line_from(fifo) == b"ready\n"
        await container.stop(grace=30)
    status = runner.result()
    assert (status.state, status.exit_code) == (State.TERMINATED, 137)  # SIGKILL
    assert clock.monotonic() >= 30


async def test_stop_of_a_cooperative_process_needs_no_sigkill(
    cluster: Cluster, tmp_path: Path
) -> None:
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)  # before the container starts, or its `echo >` would make a plain file
    clock = FakeClock()  # time never moves: SIGKILL would never come
    container = Container(
        shell(f"echo ready > {fifo}; exec sleep 60"),
        context(cluster.pods["a1"]),
        log_path=tmp_path / "l.log",
        restart_policy=RestartPolicy.ALWAYS,
        clock=clock,
    )
    async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as group:
        runner = group.create_task(container.run())
        assert await line_from(fifo) == b"ready\n"
        await container.stop(grace=30)
    assert (runner.result().exit_code, clock.monotonic()) == (143, 0)  # SIGTERM
