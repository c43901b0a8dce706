"""``ambientmesh ca status`` formatting, driven through the command module with a fake client."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ambientmesh.cli import ca as ca_command
from ambientmesh.cli.output import CommandFailed
from ambientmesh.controlplane.ca_service import CA_STATUS_PATH
from ambientmesh.identity.ca import CertificateAuthority
from ambientmesh.identity.certs import fingerprint_sha256
from ambientmesh.testing.clock import FakeClock
from ambientmesh.testing.pki import TestPKI


class FakeApi:
    def __init__(self, body: Any) -> None:
        self.body = body
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str) -> Any:
        self.requests.append((method, path))
        return self.body


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ca_command.register(parser.add_subparsers())
    return parser.parse_args(["ca", "status", *argv])


def run(body: Any, *argv: str) -> tuple[FakeApi, int]:
    api = FakeApi(body)
    return api, ca_command.run_status(parse(*argv), client=api)


def test_text_shows_fingerprint_expiry_trust_domain_and_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca = CertificateAuthority.open_in_memory(clock=FakeClock())
    ca.issue_node_credential("worker-1")
    api, code = run(ca.status().to_json())
    assert code == 0
    assert api.requests == [("GET", CA_STATUS_PATH)]
    out = capsys.readouterr().out.splitlines()
    root = ca.material.root
    assert out == [
        "Trust domain:        cluster.local",
        "CA:                  self-signed",
        f"Root fingerprint:    SHA256 {fingerprint_sha256(root)}",
        "Root subject:        CN=ambientmesh root CA,O=cluster.local",
        "Root expires:        2035-12-30T00:00:00Z",
        "Certificates issued: 1",
    ]


def test_text_shows_the_signing_ca_and_every_root_during_a_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki, upcoming = TestPKI(intermediate=True), TestPKI()
    pki.write_plugin_layout(tmp_path / "cacerts")
    (tmp_path / "cacerts" / "root-cert.pem").write_bytes(pki.roots_pem + upcoming.roots_pem)
    ca = CertificateAuthority.open(tmp_path, clock=FakeClock(start=datetime.now(UTC)))
    run(ca.status().to_json())
    out = capsys.readouterr().out
    assert "CA:                  plug-in\n" in out
    assert f"Signing CA:          {pki.issuer.cert.subject.rfc4514_string()}\n" in out
    assert "Trusted roots:       2\n" in out
    assert f"  - SHA256 {fingerprint_sha256(upcoming.root_cert)} CN=test root CA" in out


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_machine_readable_outputs_are_the_served_document(
    output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    body = CertificateAuthority.open_in_memory(clock=FakeClock()).status().to_json()
    run(body, "-o", output)
    printed = capsys.readouterr().out
    assert (json.loads(printed) if output == "json" else yaml.safe_load(printed)) == body


@pytest.mark.parametrize("body", [["not", "an", "object"], {"trustDomain": "x"}])
def test_an_unexpected_answer_is_a_clear_failure(body: Any) -> None:
    with pytest.raises(CommandFailed) as failure:
        run(body)
    assert "API server" in failure.value.lines[0]


def test_cluster_flag_and_output_choices() -> None:
    args = parse("--cluster", "dev", "-o", "yaml")
    assert (args.cluster, args.output, args.run) == ("dev", "yaml", ca_command.run_status)
    with pytest.raises(SystemExit):
        parse("-o", "xml")
