"""Client addressing and failure messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.errors import InvalidInput, NotFound, Unavailable
from ambientmesh.resources import kinds
from ambientmesh.store.admission import DEFAULT_ADMISSION, AdmissionRequest
from tests.integration.apiserver.conftest import RunningServer, options_for, serve

POD = kinds.lookup("v1", "Pod")


def test_for_cluster_uses_the_run_directory() -> None:
    address = ServerAddress.for_cluster("dev", env={})
    assert address.socket == Path("/run/ambientmesh/dev/api.sock")


@pytest.mark.parametrize(
    ("server", "socket", "url"),
    [
        ("/tmp/x.sock", Path("/tmp/x.sock"), None),
        ("unix:///tmp/y.sock", Path("/tmp/y.sock"), None),
        ("https://10.0.0.1:6443/", None, "https://10.0.0.1:6443"),
    ],
)
def test_environment_overrides_the_address(
    server: str, socket: Path | None, url: str | None
) -> None:
    env = {
        "AMBIENTMESH_SERVER": server,
        "AMBIENTMESH_CLIENT_CERT": "/c.pem",
        "AMBIENTMESH_CLIENT_KEY": "/k.pem",
        "AMBIENTMESH_CLIENT_CA": "/ca.pem",
    }
    address = ServerAddress.for_cluster("ignored", env=env)
    assert (address.socket, address.url) == (socket, url)
    if url:
        assert address.client_cert == Path("/c.pem")
        assert address.ca == Path("/ca.pem")


def test_plain_http_is_not_an_address() -> None:
    with pytest.raises(InvalidInput, match="plain http is not served"):
        ServerAddress.for_cluster(env={"AMBIENTMESH_SERVER": "http://localhost:8080"})


def test_unreachable_server_says_what_to_check(tmp_path: Path) -> None:
    missing = tmp_path / "nobody.sock"
    with ApiClient(ServerAddress(socket=missing)) as client, pytest.raises(Unavailable) as caught:
        client.get(POD, "web")
    message = caught.value.message
    assert message.startswith(f"cannot reach the API server at {missing}: ")
    assert message.endswith("is the cluster running? (ambientmesh up)")


async def test_async_client_maps_errors(server: RunningServer) -> None:
    async with server.async_client() as client:
        with pytest.raises(NotFound, match='pods "ghost" not found'):
            await client.get(POD, "ghost")
    async with AsyncApiClient(ServerAddress(socket=Path("/nonexistent/api.sock"))) as client:
        with pytest.raises(Unavailable, match="cannot reach the API server"):
            await client.list(POD)


def test_request_reaches_extension_endpoints(server: RunningServer) -> None:
    assert server.client().request("GET", "/healthz") == "ok"


def test_composition_root_adds_routes_and_admission(short_dir: Path) -> None:
    async def ca_status(request: web.Request) -> web.Response:
        return web.json_response({"trustDomain": "cluster.local"})

    def stamp(request: AdmissionRequest) -> dict[str, Any]:
        labels = {**request.obj["metadata"].get("labels", {}), "stamped": "yes"}
        return {**request.obj, "metadata": {**request.obj["metadata"], "labels": labels}}

    options = options_for(
        short_dir,
        extra_routes=(web.get("/apis/ambientmesh.io/v1/ca/status", ca_status),),
        admission=(*DEFAULT_ADMISSION, stamp),
    )
    with serve(options) as running:
        client = running.client()
        assert client.request("GET", "/apis/ambientmesh.io/v1/ca/status") == {
            "trustDomain": "cluster.local"
        }
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}
        assert client.create(account)["metadata"]["labels"] == {"stamped": "yes"}
