"""What a pod becomes: argv, environment ($(VAR), downward API), probes and config errors."""

from __future__ import annotations

from typing import Any

import pytest

from ambientmesh.runtime.podplan import DownwardFacts, expand, image_warnings, images_of, plan_pod
from ambientmesh.runtime.probes import HttpGet, TcpSocket
from ambientmesh.runtime.restarts import RestartPolicy

FACTS = DownwardFacts(pod_ip="10.244.1.7", host_ip="10.244.1.1", node_name="node-1")


def pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"tier": "front"}},
        "spec": {"containers": list(containers), **spec},
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$$(A)", "$(A)"),  # escaped, as Kubernetes
        ("$(MISSING)", "$(MISSING)"),  # unknown references stay as written
        ("$(A", "$(A"),
        ("cost $5", "cost $5"),
        ("trailing $", "trailing $"),
    ],
)
def test_expand_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == expected


def test_command_args_and_env_with_expansion_and_downward_api() -> None:
    plan = plan_pod(
        pod(
            {
                "name": "app",
                "image": "nginx",
                "command": ["serve"],
                "args": ["--listen=$(ADDR)", "--pod=$(ME)"],
                "env": [
                    {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "ADDR", "value": "$(IP):80"},
                    {
                        "name": "TIER",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}},
                    },
                ],
                "workingDir": "/tmp",
            }
        ),
        FACTS,
    )
    spec = plan.containers[0].spec
    assert spec is not None
    assert spec.argv == ("serve", "--listen=10.244.1.7:80", "--pod=web")
    assert dict(spec.env) == {
        "ME": "web",
        "IP": "10.244.1.7",
        "ADDR": "10.244.1.7:80",
        "TIER": "front",
    }
    assert spec.working_dir == "/tmp"
    assert plan.images == ("nginx",)


def test_a_container_without_command_cannot_run_but_others_can() -> None:
    plan = plan_pod(
        pod({"name": "img", "image": "nginx"}, {"name": "ok", "command": ["true"]}), FACTS
    )
    broken, fine = plan.containers
    assert broken.spec is None
    assert "neither command nor args" in broken.error
    assert fine.spec is not None
    assert not fine.error


def test_unsupported_env_sources_are_config_errors() -> None:
    container = {
        "name": "app",
        "command": ["true"],
        "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    }
    plan = plan_pod(pod(container), FACTS)
    assert "valueFrom.secretKeyRef is not supported" in plan.containers[0].error


def test_readiness_probe_resolves_named_ports_and_defaults_zero_timings() -> None:
    container = {
        "name": "app",
        "command": ["serve"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 0},
        "livenessProbe": {"tcpSocket": {"port": 8080}},
    }
    plan = plan_pod(pod(container), FACTS)
    probe = plan.containers[0].readiness
    assert probe is not None
    assert probe.action == HttpGet(port=8080, path="/ready")
    assert probe.period == 10.0  # 0 means "default", as the API server defaults it
    assert plan.containers[0].ignored == ("livenessProbe",)


def test_pod_level_settings() -> None:
    plan = plan_pod(
        pod(
            {"name": "a", "command": ["true"], "readinessProbe": {"tcpSocket": {"port": 9}}},
            restartPolicy="OnFailure",
            terminationGracePeriodSeconds=3,
            serviceAccountName="robot",
            initContainers=[{"name": "init", "command": ["true"]}],
        ),
        FACTS,
    )
    assert plan.restart_policy is RestartPolicy.ON_FAILURE
    assert plan.grace == 3.0
    assert plan.service_account == "robot"
    assert [c.name for c in plan.init_containers] == ["init"]
    assert plan.containers[0].readiness is not None
    assert plan.containers[0].readiness.action == TcpSocket(port=9)


def test_images_of_manifests_names_every_user_once() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}},
    }
    bare = {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "b", "image": "nginx"}]},
    }
    assert images_of([deployment, bare, {"kind": "Service", "metadata": {"name": "s"}}]) == {
        "nginx": ["Deployment shop/web", "Pod default/p"]
    }
    assert image_warnings([deployment]) == [
        "Warning: image nginx is not used: the local runtime runs each container's command and "
        "args on this host (Deployment shop/web)"
    ]
