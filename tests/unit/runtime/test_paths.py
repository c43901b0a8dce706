"""The file layout of a cluster and its environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.paths import ClusterPaths


def test_default_layout() -> None:
    paths = ClusterPaths.for_cluster("dev", env={})
    assert paths.run_dir == Path("/run/ambientmesh/dev")
    assert paths.state_dir == Path("/var/lib/ambientmesh/dev")
    assert paths.api_socket == Path("/run/ambientmesh/dev/api.sock")
    assert paths.zds_socket("node-1") == Path("/run/ambientmesh/dev/nodes/node-1/zds.sock")
    assert paths.container_log("shop", "web", "u-1", "app") == Path(
        "/run/ambientmesh/dev/logs/pods/shop_web_u-1/app.log"
    )


def test_roots_from_the_environment() -> None:
    env = {"AMBIENTMESH_RUN_ROOT": "/tmp/r", "AMBIENTMESH_STATE_ROOT": "/tmp/s"}
    paths = ClusterPaths.for_cluster("dev", env=env)
    assert (paths.run_dir, paths.state_dir) == (Path("/tmp/r/dev"), Path("/tmp/s/dev"))


def test_bad_names_and_roots_are_refused() -> None:
    with pytest.raises(InvalidInput, match="invalid cluster name"):
        ClusterPaths.for_cluster("Bad_Name", env={})
    with pytest.raises(InvalidInput, match="must be an absolute path"):
        ClusterPaths.for_cluster("dev", env={"AMBIENTMESH_RUN_ROOT": "relative"})
    with pytest.raises(InvalidInput, match="invalid node name"):
        ClusterPaths.for_cluster("dev", env={}).node_dir("../etc")


def test_socket_paths_must_fit_a_sockaddr() -> None:
    ClusterPaths.for_cluster("dev", env={}).check_socket_paths(["node-1"])
    deep = {"AMBIENTMESH_RUN_ROOT": "/tmp/" + "x" * 80}
    with pytest.raises(InvalidInput, match="longer than 107 bytes"):
        ClusterPaths.for_cluster("dev", env=deep).check_socket_paths(["node-1"])


def test_the_environment_given_to_pods_finds_the_same_cluster_again() -> None:
    env = {"AMBIENTMESH_RUN_ROOT": "/tmp/r", "AMBIENTMESH_STATE_ROOT": "/tmp/s"}
    paths = ClusterPaths.for_cluster("dev", env=env)
    given = dict(paths.environment())
    assert ClusterPaths.for_cluster(given["AMBIENTMESH_CLUSTER"], env=given) == paths
