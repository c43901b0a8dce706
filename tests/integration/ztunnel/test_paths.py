"""Each outbound and inbound path of the ztunnel on loopback, and what each reports."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, Mesh, running_app


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    async with asyncio.timeout(WAIT):
        hello = await reader.readline()
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
    writer.close()
    return hello


async def _refused(reader: asyncio.StreamReader) -> None:
    """What a client of a refused connection sees: reset, or EOF before any byte."""
    async with asyncio.timeout(WAIT):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read(100) == b""


async def test_pod_ip_traffic_goes_over_hbone_to_that_pod(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("client", "127.0.0.11")
        await mesh.add_pod("server", "127.0.0.12")
        await mesh.until(lambda d: len(d["workloads"]) == 2, "workloads")
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", app.port))
        assert await _exchange(reader, writer) == b"hello 127.0.0.11\n"
        for reporter in ("source", "destination"):
            await mesh.counted(
                "istio_tcp_connections_closed_total",
                1,
                reporter=reporter,
                connection_security_policy="mutual_tls",
                response_flags="-",
            )


async def test_workload_outside_the_mesh_is_reached_in_plaintext(mesh: Mesh) -> None:
    async with running_app("127.0.0.14") as app:
        await mesh.add_pod("client", "127.0.0.11")
        await mesh.add_pod("legacy", "127.0.0.14", labels={"app": "legacy"}, captured=False)
        vip = await mesh.service("legacy", {"app": "legacy"}, 80, app.port)
        await mesh.until(lambda d: len(d["services"]) == 1 and len(d["workloads"]) == 2, "known")
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
        assert await _exchange(reader, writer) == b"hello 127.0.0.11\n"
        await mesh.counted(
            "istio_tcp_connections_opened_total",
            1,
            reporter="source",
            connection_security_policy="unknown",
            destination_workload="legacy",
            destination_service="legacy.shop.svc.cluster.local",
        )


async def test_unknown_destination_passes_through(mesh: Mesh) -> None:
    async with running_app("127.0.0.99") as app:
        await mesh.add_pod("client", "127.0.0.11")
        await mesh.until(lambda d: len(d["pods"]) == 1, "pod")
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.99", app.port))
        assert await _exchange(reader, writer) == b"hello 127.0.0.11\n"


@pytest.mark.parametrize("port", [15001, 15006, 15008])
async def test_calls_to_ztunnels_own_ports_are_refused(mesh: Mesh, port: int) -> None:
    await mesh.add_pod("client", "127.0.0.11")
    await mesh.until(lambda d: len(d["workloads"]) == 1, "workload")
    reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.1", port))
    await _refused(reader)
    writer.close()


async def test_service_without_endpoints_fails_instead_of_passing_through(mesh: Mesh) -> None:
    await mesh.add_pod("client", "127.0.0.11")
    vip = await mesh.service("empty", {"app": "nothing"}, 80, 8080)
    await mesh.until(lambda d: len(d["services"]) == 1 and len(d["workloads"]) == 1, "known")
    reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
    await _refused(reader)
    writer.close()


async def test_plaintext_client_reaches_a_captured_pod_in_permissive_mode(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("server", "127.0.0.12")
        await mesh.until(lambda d: len(d["workloads"]) == 1, "workload")
        destination = SocketAddr.of("127.0.0.12", app.port)
        reader, writer = await mesh.dial_plaintext("127.0.0.40", "127.0.0.12", destination)
        assert await _exchange(reader, writer) == b"hello 127.0.0.40\n"
        assert app.peers == ["127.0.0.40"]


async def test_inbound_connection_to_a_closed_port_answers_503_and_counts_connect(
    mesh: Mesh,
) -> None:
    await mesh.add_pod("client", "127.0.0.11")
    await mesh.add_pod("server", "127.0.0.12")
    await mesh.until(lambda d: len(d["workloads"]) == 2, "workloads")
    reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", 1))
    await _refused(reader)
    writer.close()
    await mesh.counted(
        "istio_tcp_connections_failed_total", 1, reporter="destination", response_flags="CONNECT"
    )
