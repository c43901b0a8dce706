"""Two clusters with different names on one host: separate networks, names, addresses, fates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.namespaced.runtime_e2e.localcluster import local_cluster, write

pytestmark = [pytest.mark.root, pytest.mark.slow]

APP = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: echo
          image: ambientmesh/echo
          command: [python, -m, ambientmesh.apps.echo, --pod, "$(CLUSTER)"]
          env: [{name: CLUSTER, value: "%s"}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_two_clusters_coexist_and_go_down_independently(root: Path, tmp_path: Path) -> None:
    with local_cluster(root, "a") as first, local_cluster(root, "b") as second:
        for cluster in (first, second):
            manifest = write(tmp_path, f"{cluster.name}.yaml", APP % cluster.name)
            result = cluster.up("-f", str(manifest), nodes=1)
            assert result.code == 0, result.err + result.out
        for cluster in (first, second):
            answer = cluster.exec(
                "deploy/echo", "curl", "-sS", "-m", "5", "http://echo/?format=json"
            )
            assert json.loads(answer.out)["pod"] == cluster.name  # each sees its own Service
        # The same addresses in both: they are separate networks.
        assert first.list("pod")[0]["status"]["podIP"] == second.list("pod")[0]["status"]["podIP"]

        assert first.down("--purge").code == 0
        assert first.leftovers() == []
        answer = second.exec("deploy/echo", "curl", "-sS", "-m", "5", "http://echo/?format=json")
        assert json.loads(answer.out)["pod"] == second.name
