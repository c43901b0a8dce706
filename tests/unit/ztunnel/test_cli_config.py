"""``ambientmesh ztunnel`` and ``ambientmesh waypoint``: flags, environment and the runtime's
file layout become one frozen configuration; bad input is refused with what and where."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import pytest

from ambientmesh.cli import waypoint, ztunnel
from ambientmesh.errors import InvalidInput


def _parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def test_ztunnel_defaults_follow_the_runtime_layout() -> None:
    args = _parse(ztunnel, ["ztunnel", "--node", "node-1", "--cluster", "c1"])
    config = ztunnel.build_config(args, {"AMBIENTMESH_RUN_ROOT": "/tmp/run"})
    assert config.xds_address == "unix:/tmp/run/c1/xds.sock"
    assert config.ca_address == config.xds_address
    assert config.zds_socket == Path("/tmp/run/c1/nodes/node-1/zds.sock")
    assert config.credential_dir == Path("/tmp/run/c1/nodes/node-1/credential")
    assert config.admin_address == ("127.0.0.1", 15000)
    assert config.cluster_id == "Kubernetes"


def test_ztunnel_flags_win_over_the_environment() -> None:
    argv = ["ztunnel", "--node", "n", "--control-plane", "unix:/cp.sock", "--log-format", "json"]
    env = {"XDS_ADDRESS": "unix:/env.sock", "SECRET_TTL": "5m", "CLUSTER_ID": "c9"}
    config = ztunnel.build_config(_parse(ztunnel, argv), env)
    assert config.xds_address == "unix:/env.sock"  # a specific override beats --control-plane
    assert config.ca_address == "unix:/cp.sock"
    assert config.secret_ttl == timedelta(minutes=5)
    assert config.cluster_id == "c9"
    assert config.log_format.value == "json"


def test_ztunnel_refuses_a_bad_duration_naming_the_flag() -> None:
    args = _parse(ztunnel, ["ztunnel", "--node", "n", "--secret-ttl", "tomorrow"])
    with pytest.raises(InvalidInput, match="--secret-ttl: 'tomorrow' is not a duration"):
        ztunnel.build_config(args, {})


def test_waypoint_takes_its_identity_from_the_pod_environment() -> None:
    args = _parse(waypoint, ["waypoint", "--gateway", "shop/waypoint"])
    env = {"POD_NAME": "waypoint-0", "POD_NAMESPACE": "shop", "NODE_NAME": "node-2"}
    config = waypoint.build_config(args, env)
    assert str(config.identity) == "spiffe://cluster.local/ns/shop/sa/waypoint"
    assert config.credential_dir == Path("/run/ambientmesh/default/nodes/node-2/credential")
    assert config.hbone_address == ("0.0.0.0", 15008)


def test_waypoint_says_what_is_missing() -> None:
    with pytest.raises(InvalidInput, match=r"--pod-name \(env POD_NAME\) and --node"):
        waypoint.build_config(_parse(waypoint, ["waypoint", "--gateway", "shop/w"]), {})
    with pytest.raises(InvalidInput, match="expected <namespace>/<name>"):
        waypoint.build_config(_parse(waypoint, ["waypoint", "--gateway", "w"]), {})
