"""Resource URL parsing (a pure function; here with the other API server tests)."""

from __future__ import annotations

import pytest

from ambientmesh.apiserver.paths import collection_path, object_path, parse_resource_path
from ambientmesh.errors import NotFound
from ambientmesh.resources import kinds

POD = kinds.lookup("v1", "Pod")
NAMESPACE = kinds.lookup("v1", "Namespace")
GATEWAY = kinds.lookup("gateway.networking.k8s.io/v1", "Gateway")


@pytest.mark.parametrize(
    "case",
    [
        ("/api/v1/pods", "Pod", None, None, None, "v1"),
        ("/api/v1/namespaces/prod/pods", "Pod", "prod", None, None, "v1"),
        ("/api/v1/namespaces/prod/pods/web", "Pod", "prod", "web", None, "v1"),
        ("/api/v1/namespaces/prod/pods/web/status", "Pod", "prod", "web", "status", "v1"),
        ("/api/v1/namespaces", "Namespace", None, None, None, "v1"),
        ("/api/v1/namespaces/prod", "Namespace", None, "prod", None, "v1"),
        ("/api/v1/namespaces/prod/status", "Namespace", None, "prod", "status", "v1"),
        ("/api/v1/nodes/n1", "Node", None, "n1", None, "v1"),
        (
            "/apis/gateway.networking.k8s.io/v1beta1/namespaces/a/gateways/g",
            "Gateway",
            "a",
            "g",
            None,
            "v1beta1",
        ),
        (
            "/apis/security.istio.io/v1/authorizationpolicies",
            "AuthorizationPolicy",
            None,
            None,
            None,
            "v1",
        ),
    ],
    ids=lambda case: case[0],
)
def test_parse(case: tuple[str, str, str | None, str | None, str | None, str]) -> None:
    path, *expected = case
    parsed = parse_resource_path(path)
    got = [parsed.kind.kind, parsed.namespace, parsed.name, parsed.subresource, parsed.version]
    assert got == expected


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/pods",
        "/api/v1",
        "/apis/apps",
        "/api/v1/namespaces/a/pods/web/logs",
        "/api/v1/namespaces/a/pods/web/status/extra",
        "/api/v1/namespaces/a/nodes",
        "/api/v1/pods/web",
        "/apis/apps/v1beta1/deployments",
        "/apis/example.com/v1/widgets",
    ],
)
def test_unknown_paths_are_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        parse_resource_path(path)


def test_paths_round_trip() -> None:
    assert collection_path(POD, None, "prod") == "/api/v1/namespaces/prod/pods"
    assert collection_path(POD) == "/api/v1/pods"
    assert object_path(NAMESPACE, "prod", "ignored") == "/api/v1/namespaces/prod"
    url = object_path(GATEWAY, "g", "a")
    assert url == "/apis/gateway.networking.k8s.io/v1/namespaces/a/gateways/g"
    assert parse_resource_path(url).name == "g"
