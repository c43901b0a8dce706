"""apply, get, delete and label end to end against a real API server on a unix socket."""

from __future__ import annotations

import json

import pytest
import yaml

from ambientmesh.cli.main import main
from tests.cli.conftest import TESTDATA
from tests.integration.apiserver.conftest import RunningServer

Capture = pytest.CaptureFixture[str]
APP = str(TESTDATA / "app.yaml")


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_creates_then_reports_unchanged_then_configured(
    server: RunningServer, capsys: Capture, tmp_path: pytest.TempPathFactory
) -> None:
    code, out, _ = run(capsys, "apply", "-f", APP)
    assert code == 0
    assert out.splitlines() == [
        "namespace/shop created",
        "serviceaccount/web created",
        "deployment.apps/web created",
        "service/web created",
        "authorizationpolicy.security.istio.io/web-allow created",
    ]
    code, out, _ = run(capsys, "apply", "-f", APP)
    assert code == 0
    assert all(line.endswith(" unchanged") for line in out.splitlines())

    changed = TESTDATA.joinpath("app.yaml").read_text().replace("replicas: 2", "replicas: 3")
    path = tmp_path / "changed.yaml"  # type: ignore[operator]
    path.write_text(changed)
    code, out, _ = run(capsys, "apply", "-f", str(path))
    assert code == 0
    assert "deployment.apps/web configured" in out.splitlines()
    assert "service/web unchanged" in out.splitlines()


def test_a_batch_with_one_invalid_document_applies_nothing(
    server: RunningServer, capsys: Capture
) -> None:
    code, out, err = run(capsys, "apply", "-f", str(TESTDATA / "bad-batch.yaml"))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert any("document 0" in line and "ConfigMapLike" in line for line in lines)
    assert any("document 2" in line and "spec.ports[0].port" in line for line in lines)
    assert any("document 2" in line and "bogus" in line for line in lines)
    code, out, err = run(capsys, "get", "services")
    assert "ok-service" not in out
    assert "No resources found in default namespace." in err


def test_client_dry_run_needs_no_server(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMBIENTMESH_SERVER", "/nonexistent/api.sock")
    code, out, _ = run(capsys, "apply", "--dry-run", "-f", APP)
    assert code == 0
    assert "deployment.apps/web validated (dry run)" in out.splitlines()


def test_server_dry_run_changes_nothing(server: RunningServer, capsys: Capture) -> None:
    code, out, _ = run(capsys, "apply", "--dry-run=server", "-f", APP)
    assert code == 0
    assert "namespace/shop created (server dry run)" in out.splitlines()
    code, _, err = run(capsys, "get", "namespace", "shop")
    assert code == 1
    assert "not found" in err


def test_get_table_json_yaml_and_selectors(server: RunningServer, capsys: Capture) -> None:
    assert run(capsys, "apply", "-f", APP)[0] == 0

    code, out, _ = run(capsys, "get", "svc", "-n", "shop")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "AGE"]
    assert row.split()[:2] == ["web", "ClusterIP"]
    assert row.split()[2].startswith("10.96.")

    code, out, _ = run(capsys, "get", "deploy", "web", "-n", "shop", "-o", "json")
    assert code == 0
    obj = json.loads(out)
    assert obj["kind"] == "Deployment"
    assert obj["metadata"]["generation"] == 1

    code, out, _ = run(capsys, "get", "ap", "-A", "-o", "yaml")
    assert code == 0
    listed = yaml.safe_load(out)
    assert listed["kind"] == "List"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web-allow"]

    _, out, _ = run(capsys, "get", "ns", "-l", "istio.io/dataplane-mode=ambient", "-o", "name")
    assert out.splitlines() == ["namespace/shop"]

    _, out, _ = run(capsys, "get", "sa,svc", "-A")
    assert "NAMESPACE" in out.splitlines()[0]


def test_delete_by_name_and_by_file(server: RunningServer, capsys: Capture) -> None:
    assert run(capsys, "apply", "-f", APP)[0] == 0
    code, out, _ = run(capsys, "delete", "svc", "web", "-n", "shop")
    assert (code, out) == (0, 'service "web" deleted\n')
    code, out, err = run(capsys, "delete", "svc", "web", "-n", "shop")
    assert code == 1
    assert 'services "web" not found' in err
    code, out, err = run(capsys, "delete", "-f", APP)
    assert code == 1  # the Service was already gone
    assert out.splitlines() == [
        'authorizationpolicy.security.istio.io "web-allow" deleted',
        'deployment.apps "web" deleted',
        'serviceaccount "web" deleted',
        'namespace "shop" deleted',
    ]
    assert 'services "web" not found' in err
    code, _, _ = run(capsys, "delete", "-f", APP, "--ignore-not-found")
    assert code == 0


def test_label_add_overwrite_and_remove(server: RunningServer, capsys: Capture) -> None:
    assert run(capsys, "apply", "-f", APP)[0] == 0
    code, out, _ = run(capsys, "label", "ns", "shop", "istio.io/use-waypoint=waypoint")
    assert (code, out) == (0, "namespace/shop labeled\n")
    code, _, err = run(capsys, "label", "ns", "shop", "istio.io/dataplane-mode=none")
    assert code == 1
    assert "already has a value (ambient), and --overwrite is false" in err
    code, _, _ = run(capsys, "label", "ns", "shop", "--overwrite", "istio.io/dataplane-mode=none")
    assert code == 0
    code, out, _ = run(capsys, "label", "ns", "shop", "istio.io/use-waypoint-")
    assert (code, out) == (0, "namespace/shop unlabeled\n")
    code, out, _ = run(capsys, "get", "ns", "shop", "-o", "json")
    assert json.loads(out)["metadata"]["labels"] == {
        "istio.io/dataplane-mode": "none",
        "kubernetes.io/metadata.name": "shop",
    } or json.loads(out)["metadata"]["labels"] == {"istio.io/dataplane-mode": "none"}


def test_label_rejects_malformed_changes(capsys: Capture) -> None:
    code, _, err = run(capsys, "label", "ns", "shop", "no-equals-or-dash")
    assert code == 2
    assert 'invalid label change "no-equals-or-dash"' in err


def test_unreachable_server_says_how_to_start_one(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMBIENTMESH_SERVER", "/nonexistent/api.sock")
    code, _, err = run(capsys, "get", "pods")
    assert code == 1
    assert "cannot reach the API server" in err
    assert "ambientmesh up" in err


def test_unknown_resource_type(server: RunningServer, capsys: Capture) -> None:
    code, _, err = run(capsys, "get", "widgets")
    assert code == 1
    assert 'doesn\'t have a resource type "widgets"' in err
