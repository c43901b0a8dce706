"""Bad requests get a 4xx Status whose message says what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.apiserver.conftest import RunningServer, options_for, serve

PODS = "/api/v1/namespaces/default/pods"
POD = (
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},'
    '"spec":{"containers":[{"name":"a","image":"b"}]}}'
)


@pytest.fixture
def raw(server: RunningServer) -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(uds=str(server.options.socket))
    with httpx.Client(transport=transport, base_url="http://apiserver") as client:
        yield client


CASES = [
    ("POST", PODS, "{not json", 400, "BadRequest", "not valid JSON: Expecting property name"),
    ("POST", PODS, "", 400, "BadRequest", "no body"),
    ("POST", PODS, "[1, 2]", 400, "BadRequest", "must be a JSON object, not an array"),
    ("POST", PODS, b"\xff\xfe", 400, "BadRequest", "not UTF-8"),
    (
        "POST",
        PODS,
        '{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}',
        400,
        "BadRequest",
        "the object is a 'Service' but pods takes \"Pod\"",
    ),
    (
        "POST",
        PODS,
        '{"apiVersion":"v2","kind":"Pod","metadata":{"name":"x"}}',
        400,
        "BadRequest",
        "the API version in the data (v2) does not match the expected API version (v1)",
    ),
    (
        "POST",
        "/api/v1/namespaces/other/pods",
        POD.replace('"name":"web"', '"name":"web","namespace":"default"'),
        400,
        "BadRequest",
        "the namespace of the object (default) does not match the namespace on the URL (other)",
    ),
    (
        "PUT",
        f"{PODS}/other",
        POD,
        400,
        "BadRequest",
        "the name of the object (web) does not match the name on the URL (other)",
    ),
    (
        "GET",
        "/api/v1/namespaces/default/gizmos",
        None,
        404,
        "NotFound",
        'no resource type "gizmos"',
    ),
    ("GET", "/apis/apps/v2/deployments", None, 404, "NotFound", "not served at apps/v2"),
    ("GET", "/api/v1/pods/web", None, 404, "NotFound", "pods are namespaced"),
    (
        "GET",
        "/api/v1/namespaces/default/nodes",
        None,
        404,
        "NotFound",
        "nodes are cluster-scoped",
    ),
    (
        "GET",
        "/nowhere",
        None,
        404,
        "NotFound",
        "could not find the requested resource: /nowhere",
    ),
    ("PATCH", f"{PODS}/web", "{}", 405, "MethodNotAllowed", "PATCH is not supported"),
    ("POST", "/api/v1/pods", POD, 405, "MethodNotAllowed", "pods are namespaced"),
    ("GET", f"{PODS}?labelSelector=app+in+(x", None, 400, "BadRequest", "app in (x"),
    (
        "GET",
        f"{PODS}?fieldSelector=spec.bogus%3Dx",
        None,
        400,
        "BadRequest",
        "field label not supported",
    ),
    (
        "GET",
        f"{PODS}?watch=true&resourceVersion=abc",
        None,
        400,
        "BadRequest",
        "resourceVersion",
    ),
    ("GET", f"{PODS}?watch=true&timeoutSeconds=-1", None, 400, "BadRequest", "timeoutSeconds"),
    (
        "POST",
        "/apis/ambientmesh.io/v1/apply",
        '{"objects": []}',
        400,
        "BadRequest",
        'the apply body must be {"items"',
    ),
    (
        "POST",
        PODS,
        POD.replace('"image":"b"', '"image":"b","bogus":1'),
        422,
        "Invalid",
        "Pod default/web: spec.containers[0].bogus",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case[0]} {case[1]} -> {case[3]}")
def test_bad_request_gets_a_useful_status(
    raw: httpx.Client, case: tuple[str, str, str | bytes | None, int, str, str]
) -> None:
    method, path, body, code, reason, message = case
    response = raw.request(method, path, content=body)
    assert response.status_code == code, response.text
    status = response.json()
    assert status["kind"] == "Status"
    assert status["status"] == "Failure"
    assert status["code"] == code
    assert status["reason"] == reason
    assert message in status["message"]


def test_invalid_object_lists_every_issue_with_its_field(raw: httpx.Client) -> None:
    body = (
        '{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},'
        '"spec":{"ports":[{"port":70000},{"port":0}]}}'
    )
    status = raw.post("/api/v1/namespaces/default/services", content=body).json()
    fields = {cause["field"] for cause in status["details"]["causes"]}
    assert {"spec.ports[0].port", "spec.ports[1].port"} <= fields


def test_too_large_body_is_413(short_dir: Path) -> None:
    with serve(options_for(short_dir, max_body_bytes=1 << 16)) as small:
        transport = httpx.HTTPTransport(uds=str(small.options.socket))
        with httpx.Client(transport=transport, base_url="http://apiserver") as client:
            response = client.post(PODS, content=POD.replace("web", "x" * (1 << 17)))
    assert response.status_code == 413
    assert response.json()["kind"] == "Status"


def test_server_keeps_serving_after_bad_requests(raw: httpx.Client) -> None:
    for _ in range(3):
        assert raw.post(PODS, content="{").status_code == 400
    assert raw.post(PODS, content=POD).status_code == 201
