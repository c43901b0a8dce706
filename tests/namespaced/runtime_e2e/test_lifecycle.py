"""`ambientmesh up`, traffic across nodes by Service name, `ambientmesh down`: nothing left."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.namespaced.runtime_e2e.localcluster import local_cluster, write

pytestmark = [pytest.mark.root, pytest.mark.slow]

CROSS_NODE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: server}
spec:
  replicas: 1
  selector: {matchLabels: {app: server}}
  template:
    metadata: {labels: {app: server}}
    spec:
      nodeName: node-2
      containers:
        - name: echo
          image: ambientmesh/echo
          command: [python, -m, ambientmesh.apps.echo]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: server}
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  terminationGracePeriodSeconds: 1
  containers:
    - {name: client, image: curlimages/curl, command: [sleep, infinity]}
"""


def test_up_serves_across_nodes_by_name_then_down_leaves_nothing(
    root: Path, tmp_path: Path
) -> None:
    manifest = write(tmp_path, "app.yaml", CROSS_NODE)
    with local_cluster(root, "l") as cluster:
        up = cluster.up("-f", str(manifest))
        assert up.code == 0, up.err + up.out
        assert f'Cluster "{cluster.name}" is up' in up.out
        assert "Warning: image ambientmesh/echo is not used" in up.err

        client = cluster.get("pod", "client")
        (server,) = cluster.list("pod", "default", selector="app=server")
        assert (client["spec"]["nodeName"], server["spec"]["nodeName"]) == ("node-1", "node-2")
        for host in (
            "server",
            "server.default",
            "server.default.svc",
            "server.default.svc.cluster.local",
        ):
            answer = cluster.exec("client", "curl", "-sS", "-m", "5", f"http://{host}/?format=json")
            assert answer.code == 0, answer.err
            body = json.loads(answer.out)
            assert body["pod"] == server["metadata"]["name"]
            # Routed, not NATed: the server sees the client pod's own address.
            assert body["client"].split(":")[0] == client["status"]["podIP"]

        again = cluster.up()
        assert again.code == 1
        assert "is already running" in again.err
        assert f"ambientmesh down --name {cluster.name}" in again.err

        down = cluster.down()
        assert down.code == 0, down.err
        assert cluster.leftovers() == []
        assert not any("ambientmesh" in table for table in _host_tables())
        assert (cluster.paths.state_dir / "store.db").exists()  # kept for the next `up`

        purged = cluster.down("--purge")
        assert purged.code == 0
        assert not cluster.paths.state_dir.exists()
        twice = cluster.down()
        assert (twice.code, twice.out.strip()) == (
            0,
            f'Cluster "{cluster.name}" is not running; nothing to remove.',
        )


def test_invalid_manifest_stops_up_before_anything_is_created(root: Path, tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, imagePullPolicy: Sometimes}]}\n",
    )
    with local_cluster(root, "b") as cluster:
        result = cluster.up("-f", str(bad))
        assert result.code == 1
        assert "imagePullPolicy" in result.err
        assert cluster.leftovers() == []
        assert not cluster.paths.state_dir.exists()


def _host_tables() -> list[str]:
    listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return listed.stdout.splitlines()


def test_a_batch_the_server_refuses_removes_the_new_cluster_again(
    root: Path, tmp_path: Path
) -> None:
    # Valid on its own, refused by the API server: the namespace does not exist.
    orphan = write(
        tmp_path,
        "orphan.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: nowhere}\n"
        "spec: {ports: [{port: 80}]}\n",
    )
    with local_cluster(root, "r") as cluster:
        result = cluster.up("-f", str(orphan))
        assert result.code == 1
        assert 'namespaces "nowhere" not found' in result.err
        assert f'Removing the half-created cluster "{cluster.name}"' in result.err
        assert cluster.leftovers() == []
        assert not cluster.paths.state_dir.exists()  # it was new: its state goes too
