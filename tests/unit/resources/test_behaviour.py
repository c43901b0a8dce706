"""Validation behaviours chosen on purpose: where we match Kubernetes or Istio, the name says so."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ambientmesh.errors import InvalidInput, ValidationFailed
from ambientmesh.resources import schemas
from ambientmesh.resources.istio_security import AuthorizationPolicy
from ambientmesh.resources.istio_virtualservice import VirtualService
from ambientmesh.resources.typed import parse, parse_as
from ambientmesh.resources.validation import validate

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"containers": [{"name": "app", "image": "echo", "ports": [{"containerPort": 80}]}]},
}


def pod(**spec: Any) -> dict[str, Any]:
    obj = copy.deepcopy(POD)
    obj["spec"].update(spec)
    return obj


def paths(obj: dict[str, Any]) -> list[str]:
    return [issue.path for issue in validate(obj)]


def test_every_problem_in_one_object_is_reported_at_once() -> None:
    obj = pod(
        containers=[
            {
                "name": "App",
                "image": "x",
                "foo": 1,
                "ports": [{"containerPort": 70000, "protocol": "HTTP"}],
            }
        ]
    )
    obj["metadata"]["labels"] = {"bad key!": "x"}
    assert paths(obj) == [
        "metadata.labels[bad key!]",
        "spec.containers[0].foo",
        "spec.containers[0].name",
        "spec.containers[0].ports[0].containerPort",
        "spec.containers[0].ports[0].protocol",
    ]


def test_server_set_metadata_is_accepted_like_the_kubernetes_api_server() -> None:
    obj = copy.deepcopy(POD)
    obj["metadata"].update(
        uid="0b1c",
        resourceVersion="42",
        generation=3,
        creationTimestamp="2026-01-01T00:00:00Z",
        deletionTimestamp="2026-01-02T00:00:00Z",
        deletionGracePeriodSeconds=30,
        finalizers=["example.com/cleanup"],
        managedFields=[{"manager": "kubectl"}],
        ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"}],
    )
    assert validate(obj) == []


def test_bad_timestamp_in_metadata() -> None:
    obj = copy.deepcopy(POD)
    obj["metadata"]["creationTimestamp"] = "yesterday"
    assert paths(obj) == ["metadata.creationTimestamp"]


def test_service_names_must_be_rfc1035_labels_as_kubernetes_requires() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]},
    }
    assert validate(service) == []
    service["metadata"]["name"] = "9web"
    assert paths(service) == ["metadata.name"]


def test_job_names_are_limited_to_63_characters_as_in_kubernetes() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j" * 64},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}
            }
        },
    }
    assert paths(job) == ["metadata.name"]


def test_headless_and_external_name_services_need_no_ports() -> None:
    headless = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}},
    }
    external = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "api.example.com"},
    }
    assert validate(headless) == []
    assert validate(external) == []
    external["spec"]["externalName"] = "not a name"
    assert paths(external) == ["spec.externalName"]


def test_probe_with_named_port_and_grpc_handler() -> None:
    obj = pod()
    container = obj["spec"]["containers"][0]
    container["readinessProbe"] = {"grpc": {"port": 9090}}
    container["livenessProbe"] = {"httpGet": {"port": "http"}, "successThreshold": 2}
    assert paths(obj) == ["spec.containers[0].livenessProbe.successThreshold"]


def test_container_port_names_are_unique_across_the_pod() -> None:
    obj = pod(
        containers=[
            {"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "b", "image": "x", "ports": [{"containerPort": 81, "name": "http"}]},
        ]
    )
    assert paths(obj) == ["spec.containers[1].ports[0].name"]


def test_non_object_and_bad_envelope() -> None:
    assert [str(i) for i in validate([1, 2])] == ["invalid type: expected object, got list"]  # type: ignore[arg-type]
    assert paths({"apiVersion": 1, "kind": "Pod"}) == ["apiVersion"]
    assert paths({"apiVersion": "v1", "kind": "Pod", "metadata": "web"}) == ["metadata", "spec"]


def test_null_labels_are_unset_like_kubernetes() -> None:
    obj = copy.deepcopy(POD)
    obj["metadata"]["labels"] = None
    assert validate(obj) == []


def test_unknown_top_level_field_on_a_core_kind() -> None:
    obj = copy.deepcopy(POD)
    obj["sepc"] = {}
    assert [str(i) for i in validate(obj)] == ['sepc: unknown field "sepc"']


def test_schemas_come_from_the_newest_strict_set_and_validators_are_cached() -> None:
    assert schemas.schema_version().endswith("-local-strict")
    assert schemas.validator("", "v1", "Pod") is schemas.validator("", "v1", "Pod")


def test_istio_models_reject_snake_case_field_names_from_yaml() -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "a"},
        "spec": {"rules": [{"to": [{"operation": {"not_paths": ["/a"]}}]}]},
    }
    assert [str(i) for i in validate(policy)] == [
        'spec.rules[0].to[0].operation.not_paths: unknown field "not_paths"'
    ]


def test_matches_istio_principal_globs() -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "a"},
        "spec": {
            "rules": [
                {
                    "from": [
                        {
                            "source": {
                                "principals": [
                                    "*",
                                    "cluster.local/ns/shop/*",
                                    "*/sa/admin",
                                    "td/ns/a/sa/b",
                                ]
                            }
                        }
                    ]
                }
            ]
        },
    }
    assert validate(policy) == []
    model = parse_as(policy, AuthorizationPolicy)
    assert model.spec.rules is not None
    source = model.spec.rules[0].from_[0].source  # type: ignore[index]
    assert source is not None
    assert source.principals == ["*", "cluster.local/ns/shop/*", "*/sa/admin", "td/ns/a/sa/b"]


def test_matches_istio_empty_authorization_policy_is_allow_nothing() -> None:
    policy = parse(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "deny-all", "namespace": "shop"},
            "spec": {},
        }
    )
    assert isinstance(policy, AuthorizationPolicy)
    assert policy.spec.rules is None
    assert policy.spec.action is None  # ALLOW with no rules: matches nothing, so denies all


def test_matches_istio_delegate_virtual_service_without_hosts() -> None:
    delegate = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "d"},
        "spec": {"http": [{"route": [{"destination": {"host": "a"}}]}]},
    }
    assert validate(delegate) == []
    delegate["spec"]["tcp"] = [{"route": [{"destination": {"host": "a"}}]}]
    assert [str(i) for i in validate(delegate)] == [
        "spec.hosts: required value: a delegate VirtualService (no hosts) supports only http routes"
    ]


def test_virtual_service_spec_is_required() -> None:
    assert paths(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "v"},
        }
    ) == ["spec"]


def test_parse_raises_validation_failed_with_every_issue() -> None:
    with pytest.raises(ValidationFailed) as failure:
        parse(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "v"},
                "spec": {"hosts": ["a"], "http": [{"timeout": "x"}]},
            }
        )
    assert failure.value.issues == (
        'VirtualService v: spec.http[0].timeout: invalid value "x": must be a duration such as '
        "1h2m3s, 10s or 100ms",
    )
    with pytest.raises(ValidationFailed):
        parse(copy.deepcopy(POD))


def test_parse_as_checks_the_kind() -> None:
    policy = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "a"},
    }
    with pytest.raises(InvalidInput, match="expected a VirtualService, got AuthorizationPolicy"):
        parse_as(policy, VirtualService)


def test_models_are_frozen() -> None:
    policy = parse_as(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {"name": "a"},
            "spec": {"action": "DENY"},
        },
        AuthorizationPolicy,
    )
    with pytest.raises(ValueError, match="frozen"):
        policy.spec.action = "ALLOW"  # type: ignore[misc]


def test_wrong_types_in_istio_models_are_not_coerced() -> None:
    se = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "s"},
        "spec": {"hosts": ["a.example.com"], "ports": [{"number": "443", "name": "https"}]},
    }
    assert [str(i) for i in validate(se)] == [
        'spec.ports[0].number: invalid type: expected integer, got string "443"'
    ]


def test_schema_issues_print_map_entries_as_keys() -> None:
    obj = pod(nodeSelector={"zone": 2})
    obj["spec"]["containers"][0]["resources"] = {"limits": {"cpu": True}}
    assert [str(i) for i in validate(obj)] == [
        "spec.containers[0].resources.limits[cpu]: invalid type: expected string or number, "
        "got boolean true",
        "spec.nodeSelector[zone]: invalid type: expected string, got integer 2",
    ]
