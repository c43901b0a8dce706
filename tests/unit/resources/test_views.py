"""Typed views of core kinds read the fields consumers need, with Kubernetes' defaults."""

from __future__ import annotations

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.resources.views import Deployment, Job, Pod, Service, view


def test_pod_view_reads_spec_status_and_defaults() -> None:
    pod = Pod.from_obj(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "uid": "u1",
                "labels": {"app": "web"},
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": "j",
                        "uid": "u2",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "echo",
                        "command": ["serve"],
                        "args": ["-v"],
                        "env": [
                            {"name": "A", "value": "1"},
                            {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                        ],
                        "ports": [{"containerPort": 80, "name": "http"}],
                        "readinessProbe": {
                            "httpGet": {"port": "http", "path": "/ready"},
                            "periodSeconds": 2,
                        },
                    }
                ]
            },
            "status": {
                "phase": "Running",
                "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert (pod.name, pod.namespace, pod.uid) == ("web", "shop", "u1")
    assert dict(pod.labels) == {"app": "web"}
    assert pod.service_account == "default"
    assert pod.restart_policy == "Always"
    assert pod.node_name is None
    assert pod.deletion_timestamp == "2026-01-01T00:00:00Z"
    assert pod.owner_references[0].controller is True
    (container,) = pod.containers
    assert container.command == ("serve",)
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("B", "")]
    assert container.ports[0].protocol == "TCP"
    probe = container.readiness_probe
    assert probe is not None
    assert (probe.handler, probe.port, probe.path, probe.period_seconds, probe.timeout_seconds) == (
        "httpGet",
        "http",
        "/ready",
        2,
        1,
    )
    assert (pod.phase, pod.pod_ip, pod.ready) == ("Running", "10.0.0.5", True)


def test_pod_without_status_is_not_ready() -> None:
    pod = Pod.from_obj(
        {"metadata": {"name": "a"}, "spec": {"containers": [], "serviceAccount": "legacy"}}
    )
    assert not pod.ready
    assert pod.service_account == "legacy"


def test_service_view_defaults_target_port_to_port() -> None:
    service = Service.from_obj(
        {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "clusterIP": "None",
                "ports": [
                    {"port": 80},
                    {"port": 443, "targetPort": "https", "appProtocol": "https"},
                ],
            },
        }
    )
    assert [(p.port, p.target_port, p.protocol) for p in service.ports] == [
        (80, 80, "TCP"),
        (443, "https", "TCP"),
    ]
    assert service.headless
    assert service.selector is None  # no selector: endpoints are managed by hand
    assert service.internal_traffic_policy == "Cluster"
    assert service.type == "ClusterIP"


def test_deployment_view_has_a_matching_selector_and_template() -> None:
    deployment = Deployment.from_obj(
        {
            "metadata": {"name": "d"},
            "spec": {
                "selector": {"matchLabels": {"app": "a"}},
                "template": {
                    "metadata": {"labels": {"app": "a"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        }
    )
    assert deployment.replicas == 1
    assert deployment.selector.matches(deployment.template.labels)
    assert deployment.template.spec.containers[0].name == "c"


def test_job_view_defaults() -> None:
    job = Job.from_obj(
        {"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never"}}}}
    )
    assert (job.parallelism, job.completions, job.backoff_limit) == (1, 1, 6)
    assert job.template.spec.restart_policy == "Never"


def test_view_dispatches_by_kind() -> None:
    assert isinstance(
        view({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}), Service
    )
    with pytest.raises(InvalidInput, match="no core view"):
        view({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService"})
