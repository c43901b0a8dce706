"""Batch apply through the API: all or nothing, with every problem in the answer."""

from __future__ import annotations

import pytest

from ambientmesh.errors import NotFound, ValidationFailed
from ambientmesh.resources import kinds
from tests.integration.apiserver.conftest import RunningServer
from tests.integration.apiserver.samples import sample

POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")


def test_batch_with_one_invalid_document_applies_nothing(server: RunningServer) -> None:
    client = server.client()
    rv = client.list(POD).resource_version
    invalid = sample("Pod")
    invalid["metadata"]["name"] = "web"
    invalid["spec"]["containers"][0]["name"] = "Bad Name"
    batch = [sample("Service"), sample("Deployment"), invalid, sample("Namespace")]
    with pytest.raises(ValidationFailed) as caught:
        client.apply(batch)
    assert any(
        issue.startswith("items[2]: Pod default/web: spec.containers[0]")
        for issue in caught.value.issues
    )
    with pytest.raises(NotFound):
        client.get(SERVICE, "web")
    assert client.list(POD).resource_version == rv


def test_apply_reports_actions_and_dry_run_changes_nothing(server: RunningServer) -> None:
    client = server.client()
    batch = [sample("Namespace"), sample("Service"), sample("Pod")]
    first = client.apply(batch)
    assert [(r.kind, r.namespace, r.name, r.action) for r in first] == [
        ("Namespace", None, "prod", "created"),
        ("Service", "default", "web", "created"),
        ("Pod", "default", "web", "created"),
    ]
    assert [r.action for r in client.apply(batch)] == ["unchanged"] * 3
    changed = sample("Service")
    changed["spec"]["ports"][0]["port"] = 8080
    rv = client.list(SERVICE).resource_version
    preview = client.apply([changed], dry_run=True)
    assert [r.describe() for r in preview] == ["service/web configured"]
    assert client.list(SERVICE).resource_version == rv
    assert client.get(SERVICE, "web")["spec"]["ports"][0]["port"] == 80
