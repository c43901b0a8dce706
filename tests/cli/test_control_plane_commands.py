"""Commands served by a running control plane: ``ca status`` and ``ztunnel-config``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ambientmesh.cli.main import main
from ambientmesh.clock import SystemClock
from ambientmesh.identity.ca import CertificateAuthority

Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def control_plane() -> Iterator[Path]:
    """``ambientmesh control-plane`` as a real process; yields its run directory."""
    root = Path(tempfile.mkdtemp(prefix="am-cp-", dir="/tmp"))
    run_dir, state_dir = root / "run", root / "state"
    log = (root / "control-plane.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ambientmesh",
            "control-plane",
            "--cluster",
            "clitest",
            "--run-dir",
            str(run_dir),
            "--state-dir",
            str(state_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "api.sock").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"control plane did not start:\n{(root / 'control-plane.log').read_text()}"
                )
            time.sleep(0.05)  # waiting for another process to bind its socket
        yield root
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server_env(control_plane: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AMBIENTMESH_SERVER", str(control_plane / "run" / "api.sock"))
    return control_plane


def test_ca_status_shows_the_root_the_control_plane_created(
    server_env: Path, capsys: Capture
) -> None:
    assert main(["ca", "status", "-o", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    ca = CertificateAuthority.open(server_env / "state", clock=SystemClock())
    assert status["trustDomain"] == "cluster.local"
    assert status["root"]["fingerprintSHA256"] == ca.status().root.fingerprint_sha256
    assert status["root"]["notAfter"]

    assert main(["ca", "status"]) == 0
    text = capsys.readouterr().out
    assert "Trust domain:" in text
    assert f"SHA256 {status['root']['fingerprintSHA256']}" in text
    assert "Certificates issued:" in text


def test_ztunnel_config_lists_workloads_from_the_store(
    server_env: Path, capsys: Capture, tmp_path: Path
) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: zc\n"
        "  labels: {istio.io/dataplane-mode: ambient}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: zc}\n"
        "spec:\n  selector: {app: web}\n  ports: [{port: 80}]\n"
    )
    assert main(["apply", "-f", str(manifest)]) == 0
    capsys.readouterr()
    deadline = time.monotonic() + 10
    while True:
        assert main(["ztunnel-config", "services", "-o", "json"]) == 0
        dumped = capsys.readouterr().out
        if "web.zc.svc.cluster.local" in dumped or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the control plane computes asynchronously from its watch
    assert "web.zc.svc.cluster.local" in dumped
    assert main(["ztunnel-config", "services"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["NAMESPACE", "SERVICE", "NAME"]
    assert "web" in table
