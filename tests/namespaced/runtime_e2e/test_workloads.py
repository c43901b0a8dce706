"""Workloads on one running cluster: Jobs, probes, Deployments, scheduling, deletion, CLI views.

The cluster is shared by the tests of this module (bringing one up takes seconds); each test
works in a namespace of its own, so they do not see each other's pods.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambientmesh.linux import netns
from tests.namespaced.runtime_e2e.localcluster import (
    LocalCluster,
    local_cluster,
    pid_of,
    process_exists,
    ready,
    write,
)

# One cluster for the module: keep its tests on one xdist worker.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("runtime-workloads")]

ECHO = """
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: echo, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: echo}}}}
  template:
    metadata: {{labels: {{app: echo}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: echo
          image: ambientmesh/echo
          command: [python, -m, ambientmesh.apps.echo, --pod, "{version}"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: {ns}}}
spec:
  selector: {{app: echo}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{{name: client, image: curlimages/curl, command: [sleep, infinity]}}]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("am"), "w") as made:
        result = made.up()
        assert result.code == 0, result.err + result.out
        yield made


def pods_in(namespace: str) -> Any:
    def check(condition: Any) -> Any:
        return lambda pods: condition([p for p in pods if p["metadata"]["namespace"] == namespace])

    return check


def test_jobs_run_to_completion_and_a_failing_one_exhausts_its_backoff_limit(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    manifest = write(
        tmp_path,
        "jobs.yaml",
        """
apiVersion: v1
kind: Namespace
metadata: {name: jobs}
---
apiVersion: batch/v1
kind: Job
metadata: {name: hello, namespace: jobs}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - {name: main, image: busybox, command: [sh, -c, "echo hello from $POD_NAME on $NODE_NAME"]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: broken, namespace: jobs}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: [sh, -c, "exit 3"]}]
""",
    )
    assert cluster.apply(manifest).code == 0

    def finished(jobs: list[dict[str, Any]]) -> bool:
        kinds = {
            j["metadata"]["name"]: [
                c["type"] for c in (j.get("status") or {}).get("conditions", [])
            ]
            for j in jobs
        }
        return kinds.get("hello") == ["Complete"] and kinds.get("broken") == ["Failed"]

    jobs = {
        j["metadata"]["name"]: j
        for j in cluster.wait("jobs", finished, what="both Jobs finished", namespace="jobs")
    }
    assert jobs["hello"]["status"]["succeeded"] == 2
    assert jobs["broken"]["status"]["failed"] == 1
    assert jobs["broken"]["status"]["conditions"][0]["reason"] == "BackoffLimitExceeded"
    pods = cluster.list("pod", "jobs", selector="job-name=hello")
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded", "Succeeded"]
    (failed,) = cluster.list("pod", "jobs", selector="job-name=broken")
    assert failed["status"]["phase"] == "Failed"
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    logs = cluster.cli("logs", "-n", "jobs", pods[0]["metadata"]["name"])
    assert (
        logs.out == f"hello from {pods[0]['metadata']['name']} on {pods[0]['spec']['nodeName']}\n"
    )
    # A finished pod gives its address and namespace back.
    annotations = pods[0]["metadata"]["annotations"]
    assert not netns.exists(annotations["ambientmesh.io/netns"])


def test_failing_readiness_probe_removes_the_endpoint(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    flag = tmp_path / "ready"
    flag.touch()
    manifest = write(
        tmp_path,
        "gate.yaml",
        f"""
apiVersion: v1
kind: Namespace
metadata: {{name: probes}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: gate, namespace: probes}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: gate}}}}
  template:
    metadata: {{labels: {{app: gate}}}}
    spec:
      containers:
        - name: echo
          image: ambientmesh/echo
          command: [python, -m, ambientmesh.apps.echo]
          readinessProbe:
            exec: {{command: [test, -f, "{flag}"]}}
            periodSeconds: 1
            failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata: {{name: gate, namespace: probes}}
spec:
  selector: {{app: gate}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: probes}}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{{name: client, image: curlimages/curl, command: [sleep, infinity]}}]
""",
    )
    assert cluster.apply(manifest).code == 0
    cluster.wait(
        "pods",
        lambda ps: len(ps) == 2 and all(map(ready, ps)),
        what="pods ready",
        namespace="probes",
    )
    assert _curl(cluster, "probes", "http://gate/").code == 0

    flag.unlink()
    cluster.wait("pods", lambda ps: not any(ready(p) for p in ps if _name(p) != "client"),
                 what="gate not ready", namespace="probes")  # fmt: skip
    # kube-proxy follows the endpoint change: the VIP now refuses at once (curl exit 7).
    refused = _eventually(lambda: _curl(cluster, "probes", "http://gate/"), lambda r: r.code == 7)
    assert refused.code == 7, refused

    flag.touch()
    answered = _eventually(lambda: _curl(cluster, "probes", "http://gate/"), lambda r: r.code == 0)
    assert answered.code == 0, answered


def test_deleting_a_deployment_stops_its_processes_and_frees_its_pods(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    manifest = write(tmp_path, "echo.yaml", ECHO.format(ns="gone", replicas=2, version="v1"))
    assert cluster.apply(manifest).code == 0
    pods = cluster.wait(
        "pods", lambda ps: len(ps) == 3 and all(map(ready, ps)), what="ready", namespace="gone"
    )
    echo = [p for p in pods if p["metadata"]["name"] != "client"]
    assert {p["spec"]["nodeName"] for p in echo} == {"node-1", "node-2"}  # spread
    pids = [pid_of(p) for p in echo]
    namespaces = [p["metadata"]["annotations"]["ambientmesh.io/netns"] for p in echo]
    assert all(map(process_exists, pids))
    assert all(map(netns.exists, namespaces))

    assert cluster.cli("delete", "deployment", "echo", "-n", "gone").code == 0
    cluster.wait("pods", lambda ps: [_name(p) for p in ps] == ["client"], what="echo pods gone",
                 namespace="gone")  # fmt: skip
    assert not any(map(process_exists, pids))
    assert not any(map(netns.exists, namespaces))


def test_template_change_rolls_out_new_pods_named_like_kubernetes(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    first = write(tmp_path, "v1.yaml", ECHO.format(ns="roll", replicas=2, version="v1"))
    assert cluster.apply(first).code == 0
    before = cluster.wait(
        "pods", lambda ps: len(ps) == 3 and all(map(ready, ps)), what="v1 ready", namespace="roll"
    )
    old_names = {p["metadata"]["name"] for p in before} - {"client"}

    second = write(tmp_path, "v2.yaml", ECHO.format(ns="roll", replicas=2, version="v2"))
    assert cluster.apply(second).code == 0

    def rolled_out(deployments: list[dict[str, Any]]) -> bool:
        status = deployments[0].get("status") or {}
        counts = [status.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas")]
        return status.get("observedGeneration") == 2 and counts == [2, 2, 2]

    (deployment,) = cluster.wait("deployments", rolled_out, what="rollout", namespace="roll")
    after = [
        p
        for p in cluster.list("pod", "roll", selector="app=echo")
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert len(after) == 2
    assert not old_names & {p["metadata"]["name"] for p in after}
    for pod in after:
        template_hash = pod["metadata"]["labels"]["pod-template-hash"]
        assert pod["metadata"]["name"].startswith(f"echo-{template_hash}-")
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "Deployment",
            deployment["metadata"]["uid"],
            True,
        )
    answer = cluster.exec(
        "client", "curl", "-sS", "-m", "5", "http://echo/?format=json", namespace="roll"
    )
    assert json.loads(answer.out)["pod"] == "v2"


def test_unschedulable_pod_stays_pending_with_the_reason(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    manifest = write(
        tmp_path,
        "nowhere.yaml",
        """
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {disk: nvme}
  containers: [{name: c, image: busybox, command: [sleep, infinity]}]
""",
    )
    assert cluster.apply(manifest).code == 0

    def refused(pods: list[dict[str, Any]]) -> bool:
        return any(
            p["metadata"]["name"] == "nowhere"
            and any(
                c.get("reason") == "Unschedulable"
                for c in (p.get("status") or {}).get("conditions", [])
            )
            for p in pods
        )

    pods = cluster.wait("pods", refused, what="PodScheduled=False", namespace="default")
    (pod,) = [p for p in pods if p["metadata"]["name"] == "nowhere"]
    assert pod["status"]["phase"] == "Pending"
    assert "nodeName" not in pod["spec"]
    (condition,) = pod["status"]["conditions"]
    assert (
        condition["message"]
        == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )
    assert cluster.cli("delete", "pod", "nowhere").code == 0


def test_crashing_container_restarts_with_back_off(cluster: LocalCluster, tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "crash.yaml",
        """
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: busybox, command: [sh, -c, "echo run; exit 1"]}]
""",
    )
    assert cluster.apply(manifest).code == 0

    def restarted_twice(pods: list[dict[str, Any]]) -> bool:
        return any(
            p["metadata"]["name"] == "crasher"
            and (p.get("status") or {}).get("containerStatuses", [{}])[0].get("restartCount", 0)
            >= 2
            for p in pods
        )

    pods = cluster.wait("pods", restarted_twice, what="two restarts", namespace="default")
    (pod,) = [p for p in pods if p["metadata"]["name"] == "crasher"]
    status = pod["status"]["containerStatuses"][0]
    assert pod["status"]["phase"] == "Running"  # restartPolicy Always: it never finishes
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert cluster.cli("logs", "crasher", "--previous").out == "run\n"
    assert cluster.cli("delete", "pod", "crasher").code == 0


def test_deletion_is_graceful_sigterm_first_then_sigkill_after_the_grace(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "terminated"
    manifest = write(
        tmp_path,
        "stubborn.yaml",
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: c
      image: busybox
      command: [sh, -c, "trap 'echo term > {marker}' TERM; while true; do sleep 0.1; done"]
""",
    )
    assert cluster.apply(manifest).code == 0
    pods = cluster.wait("pods", lambda ps: any(_name(p) == "stubborn" and ready(p) for p in ps),
                        what="stubborn running", namespace="default")  # fmt: skip
    pid = pid_of(next(p for p in pods if p["metadata"]["name"] == "stubborn"))
    began = time.monotonic()
    assert cluster.cli("delete", "pod", "stubborn").code == 0
    terminating = cluster.get("pod", "stubborn")
    assert terminating["metadata"]["deletionTimestamp"]
    assert "ambientmesh.io/kubelet" in terminating["metadata"]["finalizers"]
    cluster.wait("pods", lambda ps: all(p["metadata"]["name"] != "stubborn" for p in ps),
                 what="stubborn gone", namespace="default")  # fmt: skip
    took = time.monotonic() - began
    assert marker.read_text() == "term\n"  # it got SIGTERM and ignored it...
    assert 2.0 <= took < 10.0  # ...so it was killed once the grace period was over
    assert not process_exists(pid)


def test_exec_and_logs(cluster: LocalCluster, tmp_path: Path) -> None:
    manifest = write(
        tmp_path,
        "talk.yaml",
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: talker}}
spec:
  serviceAccountName: robot
  terminationGracePeriodSeconds: 0
  initContainers:
    - {{name: prepare, image: busybox, command: [sh, -c, "echo line 1 > {tmp_path}/first"]}}
  containers:
    - name: main
      image: busybox
      command:
        - sh
        - -c
        - cat {tmp_path}/first; for i in 2 3 4 5; do echo line $i; done; exec sleep infinity
      env: [{{name: GREETING, value: hi}}]
      workingDir: /tmp
    - {{name: second, image: busybox, command: [sleep, infinity]}}
""",
    )
    assert cluster.apply(manifest).code == 0
    pods = cluster.wait("pods", lambda ps: any(_name(p) == "talker" and ready(p) for p in ps),
                        what="talker running", namespace="default")  # fmt: skip
    pod = next(p for p in pods if p["metadata"]["name"] == "talker")

    failed = cluster.exec("talker", "sh", "-c", "exit 42")
    assert failed.code == 42
    env = cluster.exec(
        "talker",
        "sh",
        "-c",
        'echo "$POD_NAME $POD_NAMESPACE $POD_IP $NODE_NAME $SERVICE_ACCOUNT $GREETING $(pwd)"',
    )
    node = pod["spec"]["nodeName"]
    assert env.out == f"talker default {pod['status']['podIP']} {node} robot hi /tmp\n"
    assert 'Defaulted container "main" out of: main, second' in env.err
    addresses = cluster.exec("talker", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert pod["status"]["podIP"] in addresses.out  # it ran inside the pod's network namespace

    assert _eventually(lambda: cluster.cli("logs", "talker", "-c", "main", "--tail", "2"),
                       lambda r: r.out == "line 4\nline 5\n").out == "line 4\nline 5\n"  # fmt: skip
    assert cluster.cli("logs", "talker").out.startswith(
        "line 1\nline 2\n"
    )  # after the init container
    statuses = cluster.get("pod", "talker")["status"]["initContainerStatuses"]
    assert statuses[0]["state"]["terminated"]["exitCode"] == 0
    missing = cluster.cli("exec", "nosuchpod", "--", "true")
    assert missing.code == 1
    assert 'pods "nosuchpod" not found' in missing.err
    assert cluster.cli("delete", "pod", "talker").code == 0


def test_logs_follow_until_the_container_finishes(cluster: LocalCluster, tmp_path: Path) -> None:
    manifest = write(tmp_path, "ticker.yaml", """
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  restartPolicy: Never
  containers:
    - name: c
      image: busybox
      command: [sh, -c, "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.3; done"]
""")  # fmt: skip
    assert cluster.apply(manifest).code == 0
    cluster.wait("pods", lambda ps: any(_name(p) == "ticker" and ready(p) for p in ps),
                 what="ticker running", namespace="default")  # fmt: skip
    followed = cluster.cli("logs", "-f", "ticker", timeout=30)
    assert followed.code == 0, followed.err
    assert followed.out == "".join(f"tick {i}\n" for i in range(1, 7))
    assert cluster.get("pod", "ticker")["status"]["phase"] == "Succeeded"
    assert cluster.cli("delete", "pod", "ticker").code == 0


def test_host_network_pod_runs_in_its_node_namespace(cluster: LocalCluster, tmp_path: Path) -> None:
    manifest = write(tmp_path, "host.yaml", """
apiVersion: v1
kind: Pod
metadata: {name: on-host}
spec:
  hostNetwork: true
  nodeName: node-2
  terminationGracePeriodSeconds: 0
  containers:
    - name: echo
      image: ambientmesh/echo
      command: [python, -m, ambientmesh.apps.echo, --http-port, "18080"]
      args: [--h2c-port, "0", --tcp-port, "0", --server-first-port, "0"]
      readinessProbe: {tcpSocket: {port: 18080}, periodSeconds: 1}
""")  # fmt: skip
    assert cluster.apply(manifest).code == 0
    pods = cluster.wait("pods", lambda ps: any(_name(p) == "on-host" and ready(p) for p in ps),
                        what="on-host ready", namespace="default")  # fmt: skip
    pod = next(p for p in pods if _name(p) == "on-host")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == "10.244.2.1"
    assert pod["metadata"]["annotations"]["ambientmesh.io/netns"] == f"am-{cluster.name}.node-2"
    answer = cluster.exec(
        "on-host", "curl", "-sS", "-m", "5", "http://10.244.2.1:18080/?format=json"
    )
    assert json.loads(answer.out)["pod"] == "on-host"
    assert cluster.cli("delete", "pod", "on-host").code == 0
    cluster.wait(
        "pods", lambda ps: all(_name(p) != "on-host" for p in ps), what="gone", namespace="default"
    )
    assert any(n.endswith(".node-2") for n in netns.names() if cluster.name in n)  # the node stays


def test_bad_manifests_are_rejected_by_apply_and_change_nothing(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    valid = ECHO.format(ns="strict", replicas=1, version="v1")
    invalid = write(
        tmp_path,
        "invalid.yaml",
        valid
        + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: strict}\n"
        + "spec: {containers: [{name: c, image: busybox, ports: [{containerPort: 70000}]}]}\n",
    )
    result = cluster.apply(invalid)
    assert result.code == 1
    assert "containerPort" in result.err
    # Valid for the schema, refused by the server: the whole batch goes, or nothing does.
    elsewhere = write(
        tmp_path,
        "elsewhere.yaml",
        valid
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: missing-ns}\n"
        + "spec: {ports: [{port: 80}]}\n",
    )
    result = cluster.apply(elsewhere)
    assert result.code == 1
    assert 'namespaces "missing-ns" not found' in result.err
    assert cluster.list("namespace", None, selector=None)
    assert not [n for n in cluster.list("namespace") if n["metadata"]["name"] == "strict"]
    assert cluster.list("deployment", "strict") == []


def test_get_pods_and_nodes_as_json_carry_where_things_run(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    manifest = write(tmp_path, "echo.yaml", ECHO.format(ns="views", replicas=1, version="v1"))
    assert cluster.apply(manifest).code == 0
    cluster.wait(
        "pods", lambda ps: len(ps) == 2 and all(map(ready, ps)), what="ready", namespace="views"
    )
    pods = json.loads(cluster.cli("get", "pods", "-n", "views", "-o", "json").out)["items"]
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"].startswith("10.244.")
        assert pod["spec"]["nodeName"] in ("node-1", "node-2")
        assert {c["type"] for c in pod["status"]["conditions"]} == {
            "PodScheduled",
            "Initialized",
            "ContainersReady",
            "Ready",
        }
        assert netns.exists(pod["metadata"]["annotations"]["ambientmesh.io/netns"])
    nodes = json.loads(cluster.cli("get", "nodes", "-o", "json").out)["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["node-1", "node-2"]
    for index, node in enumerate(nodes, start=1):
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["InternalIP"] == f"10.244.{index}.1"
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == node["metadata"]["name"]
        assert (
            node["metadata"]["annotations"]["ambientmesh.io/netns"]
            == f"am-{cluster.name}.node-{index}"
        )
        assert [c["type"] for c in node["status"]["conditions"] if c["status"] == "True"] == [
            "Ready"
        ]


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _curl(cluster: LocalCluster, namespace: str, url: str) -> Any:
    return cluster.exec("client", "curl", "-sS", "-m", "3", url, namespace=namespace)


def _eventually(action: Any, done: Any, *, timeout: float = 10.0) -> Any:
    """Repeat `action` until `done(result)`: for effects that no API event announces (an nft
    table or a log file catching up), within a deadline."""
    end = time.monotonic() + timeout
    while True:
        result = action()
        if done(result) or time.monotonic() >= end:
            return result
        time.sleep(0.2)
