"""The bundled echo app on loopback: HTTP/1.1, h2c, TCP echo, server-first, and its CLI."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from ambientmesh.apps.echo import EchoConfig, EchoServer, parse_args

DEADLINE = 10.0


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    config = EchoConfig(
        pod="echo-1", host="127.0.0.1", http_port=0, h2c_port=0, tcp_port=0, server_first_port=0
    )
    async with EchoServer(config) as server:
        yield server


async def test_http1_answers_with_pod_client_method_path_and_headers(echo: EchoServer) -> None:
    async with httpx.AsyncClient(timeout=DEADLINE) as client:
        response = await client.get(
            f"http://127.0.0.1:{echo.ports['http']}/hello?x=1", headers={"X-Test": "a"}
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "pod: echo-1"
    assert re.fullmatch(r"client: 127\.0\.0\.1:\d+", lines[1])
    assert lines[2:5] == ["protocol: HTTP/1.1", "method: GET", "path: /hello?x=1"]
    assert "X-Test: a" in lines


async def test_json_on_request_and_status_on_request(echo: EchoServer) -> None:
    base = f"http://127.0.0.1:{echo.ports['http']}"
    async with httpx.AsyncClient(timeout=DEADLINE) as client:
        by_query = await client.post(f"{base}/x?format=json&status=503", content=b"12345")
        by_accept = await client.get(f"{base}/y", headers={"Accept": "application/json"})
    assert by_query.status_code == 503
    body = by_query.json()
    assert (body["pod"], body["method"], body["path"], body["body_bytes"]) == (
        "echo-1",
        "POST",
        "/x?format=json&status=503",
        5,
    )
    assert by_accept.json()["headers"]["Accept"] == "application/json"


async def test_h2c_with_prior_knowledge(echo: EchoServer) -> None:
    async with httpx.AsyncClient(http1=False, http2=True, timeout=DEADLINE) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"http://127.0.0.1:{echo.ports['h2c']}/s{i}?format=json")
                for i in range(5)
            )
        )
        upload = await client.put(
            f"http://127.0.0.1:{echo.ports['h2c']}/up?format=json", content=b"x" * 200_000
        )
    for index, response in enumerate(responses):
        assert response.http_version == "HTTP/2"
        body = response.json()
        assert (body["protocol"], body["path"], body["pod"]) == (
            "HTTP/2",
            f"/s{index}?format=json",
            "echo-1",
        )
        assert body["headers"][":authority"].startswith("127.0.0.1:")
    assert upload.json()["body_bytes"] == 200_000  # beyond the initial flow-control window


async def test_h2c_answers_bigger_than_the_window_are_sent_whole(echo: EchoServer) -> None:
    headers = {f"x-h{i}": "v" * 200 for i in range(40)}  # ~10 KB of echoed headers, JSON-indented
    async with httpx.AsyncClient(http1=False, http2=True, timeout=DEADLINE) as client:
        response = await client.get(
            f"http://127.0.0.1:{echo.ports['h2c']}/?format=json", headers=headers
        )
    assert response.json()["headers"]["x-h39"] == "v" * 200


async def test_tcp_port_echoes_until_the_client_half_closes(echo: EchoServer) -> None:
    async with asyncio.timeout(DEADLINE):
        reader, writer = await asyncio.open_connection("127.0.0.1", echo.ports["tcp"])
        payload = bytes(range(256)) * 1000
        writer.write(payload)
        writer.write_eof()
        assert await reader.read() == payload
        writer.close()


async def test_server_first_port_greets_before_reading(echo: EchoServer) -> None:
    async with asyncio.timeout(DEADLINE):
        reader, writer = await asyncio.open_connection("127.0.0.1", echo.ports["server_first"])
        greeting = await reader.readline()  # sent before we wrote anything
        local = writer.get_extra_info("sockname")
        assert greeting.decode() == f"hello from echo-1 to {local[0]}:{local[1]}\n"
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        writer.close()


def test_ports_come_from_flags_then_env_then_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_TCP_PORT", "7000")
    monkeypatch.setenv("POD_NAME", "from-env")
    config = parse_args(["--http-port", "80"])
    assert (config.http_port, config.h2c_port, config.tcp_port, config.server_first_port) == (
        80,
        8081,
        7000,
        9001,
    )
    assert config.pod == "from-env"
    monkeypatch.setenv("ECHO_H2C_PORT", "http")
    with pytest.raises(SystemExit):
        parse_args([])


async def test_process_prints_its_ports_serves_and_stops_cleanly_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ambientmesh.apps.echo", "--host", "127.0.0.1", "--pod", "proc",
        "--http-port", "0", "--h2c-port", "0", "--tcp-port", "0", "--server-first-port", "0",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(DEADLINE):
            line = (await process.stdout.readline()).decode()
            ports = dict(re.findall(r"([a-z0-9-]+)=127\.0\.0\.1:(\d+)", line))
            assert set(ports) == {"http", "h2c", "tcp", "server-first"}
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{ports['http']}/?format=json")
            assert json.loads(response.text)["pod"] == "proc"
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            assert (await process.stdout.read()).decode() == "echo: stopped\n"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
