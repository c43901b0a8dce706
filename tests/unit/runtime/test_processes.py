"""Container process facts that need no namespace: argv, environment, exit codes, log names."""

from __future__ import annotations

import dataclasses
import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.processes import (
    ContainerSpec,
    ExitStatus,
    PodContext,
    environment,
    previous_log,
)

POD = PodContext(
    name="web-1",
    namespace="shop",
    ip=IPv4Address("10.244.1.5"),
    node_name="node-1",
    netns="am-c.shop.web-1",
)


def test_command_and_args_make_the_argv() -> None:
    spec = ContainerSpec.from_kubernetes(name="c", command=["python", "-m"], args=["http.server"])
    assert spec.argv == ("python", "-m", "http.server")
    assert ContainerSpec.from_kubernetes(name="c", args=["sleep", "1"]).argv == ("sleep", "1")
    with pytest.raises(InvalidInput, match="neither command nor args"):
        ContainerSpec.from_kubernetes(name="c")


def test_environment_carries_the_pod_facts_and_the_spec_wins() -> None:
    spec = ContainerSpec.from_kubernetes(
        name="c", command=["x"], env={"POD_NAME": "override", "A": "1"}
    )
    env = environment(spec, POD)
    assert env["POD_NAMESPACE"] == "shop"
    assert env["POD_IP"] == "10.244.1.5"
    assert env["NODE_NAME"] == "node-1"
    assert env["SERVICE_ACCOUNT"] == "default"
    assert env["HOSTNAME"] == "web-1"
    assert env["POD_NAME"] == "override"
    assert env["A"] == "1"
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_platform_variables_reach_every_container_and_the_spec_still_wins() -> None:
    pod = dataclasses.replace(POD, platform_env=(("AMBIENTMESH_CLUSTER", "dev"), ("A", "p")))
    env = environment(ContainerSpec.from_kubernetes(name="c", command=["x"], env={"A": "1"}), pod)
    assert env["AMBIENTMESH_CLUSTER"] == "dev"
    assert env["A"] == "1"


def test_the_host_environment_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "x")
    assert "SECRET_TOKEN" not in environment(
        ContainerSpec.from_kubernetes(name="c", command=["x"]), POD
    )


def test_exit_codes_follow_the_shell_convention_for_signals() -> None:
    assert ExitStatus.from_returncode(3) == ExitStatus(code=3)
    assert ExitStatus.from_returncode(-9) == ExitStatus(code=137, signal=9)
    assert ExitStatus.from_returncode(-15).code == 143


def test_previous_log_sits_next_to_the_current_one() -> None:
    assert previous_log(Path("/run/x/web.log")) == Path("/run/x/web.previous.log")
