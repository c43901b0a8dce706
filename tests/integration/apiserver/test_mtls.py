"""The TCP listener speaks mTLS only: a client without a trusted certificate is refused."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.apiserver.listeners import TlsFiles
from ambientmesh.errors import InvalidInput, Unavailable
from ambientmesh.resources import kinds
from ambientmesh.testing.pki import TestPKI
from tests.integration.apiserver.conftest import RunningServer, options_for, serve

NAMESPACE = kinds.lookup("v1", "Namespace")


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


@pytest.fixture
def tls_server(short_dir: Path, pki: TestPKI) -> Iterator[tuple[RunningServer, str]]:
    served = pki.issue_with_sans(dns_names=["localhost"])
    files = TlsFiles(
        cert=write(short_dir, "server.pem", served.chain_pem),
        key=write(short_dir, "server-key.pem", served.key_pem),
        client_ca=write(short_dir, "ca.pem", pki.roots_pem),
    )
    options = options_for(short_dir, tcp=("127.0.0.1", 0), tls=files)
    with serve(options) as running:
        port = running.addresses[1].rpartition(":")[2]
        yield running, f"https://localhost:{port}"


def client_address(directory: Path, pki: TestPKI, url: str, signer: TestPKI) -> ServerAddress:
    credential = signer.issue("default/cli")
    return ServerAddress(
        url=url,
        client_cert=write(directory, "client.pem", credential.chain_pem),
        client_key=write(directory, "client-key.pem", credential.key_pem),
        ca=write(directory, "client-ca.pem", pki.roots_pem),
    )


def test_client_with_a_trusted_certificate_is_served(
    tls_server: tuple[RunningServer, str], pki: TestPKI, tmp_path: Path
) -> None:
    _, url = tls_server
    with ApiClient(client_address(tmp_path, pki, url, pki)) as client:
        names = {ns["metadata"]["name"] for ns in client.list(NAMESPACE).items}
    assert "default" in names


def test_client_without_a_certificate_is_refused(
    tls_server: tuple[RunningServer, str], pki: TestPKI, tmp_path: Path
) -> None:
    _, url = tls_server
    context = ssl.create_default_context(cafile=write(tmp_path, "ca.pem", pki.roots_pem))
    with httpx.Client(verify=context) as anonymous, pytest.raises(httpx.TransportError):
        anonymous.get(f"{url}/api/v1/namespaces")


def test_client_with_a_foreign_certificate_is_refused(
    tls_server: tuple[RunningServer, str], pki: TestPKI, tmp_path: Path
) -> None:
    _, url = tls_server
    stranger = TestPKI()
    with (
        ApiClient(client_address(tmp_path, pki, url, stranger)) as client,
        pytest.raises(Unavailable, match="cannot reach the API server"),
    ):
        client.list(NAMESPACE)


def test_plain_http_on_the_tls_port_gets_nothing(tls_server: tuple[RunningServer, str]) -> None:
    _, url = tls_server
    with httpx.Client() as plain, pytest.raises(httpx.TransportError):
        plain.get(url.replace("https://", "http://") + "/api/v1/namespaces")


def test_https_without_client_certificate_is_refused_by_the_client() -> None:
    with pytest.raises(InvalidInput, match="requires a client certificate"):
        ApiClient(ServerAddress(url="https://localhost:1"))
