"""CRUD over a real unix socket: every kind round-trips through the API and the client."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

from ambientmesh.errors import AlreadyExists, Conflict, NotFound
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import ALL_KINDS
from ambientmesh.store.semantics import SERVER_METADATA
from tests.integration.apiserver.conftest import RunningServer
from tests.integration.apiserver.samples import SAMPLES, sample

SERVER_FIELDS = {"uid", "resourceVersion", "generation", "creationTimestamp"}
# Everything the server may add: metadata it owns, defaults admission fills in.
SERVER_SET = {f"metadata.{field}" for field in (*SERVER_METADATA, "namespace")} | {
    "spec.serviceAccountName",
    "status",
    "spec.clusterIP",
    "spec.clusterIPs",
}


def added_fields(sent: Any, got: Any, path: str = "") -> set[str]:
    """Paths present in ``got`` but not ``sent``; fails if a sent value changed."""
    if not isinstance(sent, dict):
        assert sent == got, f"{path} changed: {sent!r} -> {got!r}"
        return set()
    assert isinstance(got, dict), f"{path} is no longer an object"
    added = {f"{path}{key}" for key in got if key not in sent}
    for key, value in sent.items():
        assert key in got, f"{path}{key} was dropped"
        added |= added_fields(value, got[key], f"{path}{key}.")
    return added


def test_there_is_a_sample_of_every_kind() -> None:
    assert set(SAMPLES) == {info.kind for info in ALL_KINDS}


def test_the_socket_is_private(server: RunningServer) -> None:
    mode = os.stat(server.options.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize("info", ALL_KINDS, ids=lambda info: info.kind)
def test_every_kind_round_trips(server: RunningServer, info: kinds.KindInfo) -> None:
    client = server.client()
    obj = sample(info.kind)
    created = client.create(obj)
    fetched = client.get(info, obj["metadata"]["name"], "default")
    assert fetched == created
    # What we sent comes back unchanged, plus only the fields the server sets.
    assert added_fields(obj, fetched) <= SERVER_SET
    assert set(fetched["metadata"]) >= SERVER_FIELDS
    assert fetched["metadata"].get("namespace") == ("default" if info.namespaced else None)
    listed = client.list(info, "default" if info.namespaced else None)
    assert created in listed.items
    assert int(listed.resource_version) >= int(created["metadata"]["resourceVersion"])
    deleted = client.delete(info, obj["metadata"]["name"], "default")
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(NotFound):
        client.get(info, obj["metadata"]["name"], "default")


def test_update_and_status_over_http(server: RunningServer) -> None:
    client = server.client()
    pod_kind = kinds.lookup("v1", "Pod")
    created = client.create(sample("Pod"))
    relabelled = client.update(
        {**created, "metadata": {**created["metadata"], "labels": {"app": "web", "v": "2"}}}
    )
    assert relabelled["metadata"]["labels"]["v"] == "2"
    with pytest.raises(Conflict, match="the object has been modified"):
        client.update(created)
    running = client.update_status({**relabelled, "status": {"phase": "Running"}})
    assert running["status"] == {"phase": "Running"}
    assert client.get(pod_kind, "web")["status"] == {"phase": "Running"}
    with pytest.raises(AlreadyExists):
        client.create(sample("Pod"))


def test_reads_through_another_served_version_say_that_version(server: RunningServer) -> None:
    client = server.client()
    created = client.create(sample("AuthorizationPolicy"))
    path = "/apis/security.istio.io/v1beta1/namespaces/default/authorizationpolicies"
    old = client.request("GET", f"{path}/allow-web")
    assert old["apiVersion"] == "security.istio.io/v1beta1"
    assert old["spec"] == created["spec"]
    listed = client.request("GET", path)
    assert listed["apiVersion"] == "security.istio.io/v1beta1"
    assert [item["apiVersion"] for item in listed["items"]] == ["security.istio.io/v1beta1"]


def test_list_selectors_over_http(server: RunningServer) -> None:
    client = server.client()
    pod_kind = kinds.lookup("v1", "Pod")
    for name, app in (("a", "web"), ("b", "db"), ("c", "web")):
        obj = sample("Pod")
        obj["metadata"] = {"name": name, "labels": {"app": app}}
        client.create(obj)
    names = [o["metadata"]["name"] for o in client.list(pod_kind, label_selector="app=web").items]
    assert names == ["a", "c"]
    by_field = client.list(pod_kind, field_selector="metadata.name!=a,status.phase=Pending")
    assert [o["metadata"]["name"] for o in by_field.items] == ["b", "c"]
    everywhere = client.list(pod_kind, None)
    assert len(everywhere.items) == 3


def test_discovery_lists_every_served_kind(server: RunningServer) -> None:
    client = server.client()
    groups = {g["name"] for g in client.request("GET", "/apis")["groups"]}
    assert groups == {info.group for info in ALL_KINDS if info.group}
    core = {r["name"] for r in client.request("GET", "/api/v1")["resources"]}
    assert {"pods", "pods/status", "services", "namespaces"} <= core
    version = client.request("GET", "/version")
    assert version["gitVersion"].startswith("v")
    assert client.request("GET", "/readyz") == "ok"
