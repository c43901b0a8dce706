"""Mesh wiring: enrollment changes capture and un-capture running pods live, through ZDS.

The real `ambientmesh ztunnel` is not needed to test the wiring: `fake_ztunnel.py` speaks ZDS,
records what the node agent tells it, and reports ready on 127.0.0.1:15021 like ztunnel does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.namespaced.runtime_e2e.localcluster import local_cluster, pid_of, ready, write

pytestmark = [pytest.mark.root, pytest.mark.slow]

FAKE_ZTUNNEL = Path(__file__).with_name("fake_ztunnel.py")
REDIRECTION = "ambient.istio.io/redirection"
APP = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: web, image: busybox, command: [sleep, infinity]}]
---
apiVersion: v1
kind: Pod
metadata: {name: opted-out, namespace: shop, labels: {istio.io/dataplane-mode: none}}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: web, image: busybox, command: [sleep, infinity]}]
"""


def tables(netns: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "tables"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return listed.stdout.split()


def captured(pods: list[dict[str, Any]]) -> dict[str, bool]:
    return {
        p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(REDIRECTION)
        == "enabled"
        for p in pods
    }


def test_label_on_the_namespace_captures_and_removing_it_uncaptures_without_restart(
    root: Path, tmp_path: Path
) -> None:
    record = tmp_path / "zds.log"
    ztunnel = f"{sys.executable} {FAKE_ZTUNNEL} --record {record}"
    with local_cluster(root, "m") as cluster:
        up = cluster.up(
            "-f", str(write(tmp_path, "app.yaml", APP)), "--ztunnel-command", ztunnel, mesh=True
        )
        assert up.code == 0, up.err + up.out
        assert "ztunnel ready on node-1" in up.out
        assert "ztunnel ready on node-2" in up.out
        pods = {p["metadata"]["name"]: p for p in cluster.list("pod", "shop")}
        web_netns = pods["web"]["metadata"]["annotations"]["ambientmesh.io/netns"]
        pid = pid_of(pods["web"])
        assert captured(list(pods.values())) == {"web": False, "opted-out": False}
        assert "istio-ambient-nat" not in tables(web_netns)

        assert (
            cluster.cli("label", "namespace", "shop", "istio.io/dataplane-mode=ambient").code == 0
        )
        cluster.wait("pods", lambda ps: captured(ps) == {"web": True, "opted-out": False},
                     what="web captured", namespace="shop")  # fmt: skip
        assert {"istio-ambient-nat", "istio-ambient-mangle"} <= set(tables(web_netns))
        uid = pods["web"]["metadata"]["uid"]
        node = pods["web"]["spec"]["nodeName"]
        assert f"{node} add shop/web {uid}" in record.read_text().splitlines()

        assert cluster.cli("label", "namespace", "shop", "istio.io/dataplane-mode-").code == 0
        pods_after = cluster.wait(
            "pods", lambda ps: not any(captured(ps).values()), what="uncaptured", namespace="shop"
        )
        assert "istio-ambient-nat" not in tables(web_netns)
        assert f"{node} del {uid}" in record.read_text().splitlines()
        web = next(p for p in pods_after if p["metadata"]["name"] == "web")
        assert ready(web)
        assert pid_of(web) == pid
        assert web["status"]["containerStatuses"][0]["restartCount"] == 0
