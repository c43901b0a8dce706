"""The L4 waypoint on loopback: service traffic through it, and what it refuses (scenario 35)."""

from __future__ import annotations

import asyncio

import pytest

from ambientmesh.hbone import HboneConfig, TunnelRefused, connect
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import client_context
from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, Mesh, running_app, running_waypoint

WAYPOINT_IP = "127.0.0.30"
WAYPOINT_ID = Identity.parse("spiffe://cluster.local/ns/shop/sa/waypoint")


async def _bound(mesh: Mesh) -> str:
    """Two services, one bound to the waypoint; returns the bound one's VIP."""
    dump = await mesh.until(
        lambda d: any(s["name"] == "server" and s["waypoint"] for s in d["services"]),
        "service bound to the waypoint",
    )
    return next(s["addresses"][0].split("/")[1] for s in dump["services"] if s["name"] == "server")


async def test_service_traffic_goes_through_the_waypoint_which_the_server_sees(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app, running_waypoint(mesh, WAYPOINT_IP):
        await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
        await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
        await mesh.service(
            "server", {"app": "server"}, 80, app.port, **{"istio.io/use-waypoint": "waypoint"}
        )
        vip = await _bound(mesh)
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of(vip, 80))
        async with asyncio.timeout(WAIT):
            # The application sees the waypoint, which reached it with its own identity.
            assert await reader.readline() == f"hello {WAYPOINT_IP}\n".encode()
            writer.write(b"through")
            assert await reader.readexactly(7) == b"through"
        writer.close()
        text = await mesh.metrics()
        assert 'source_principal="spiffe://cluster.local/ns/shop/sa/waypoint"' in text
        assert 'reporter="destination"' in text


async def test_workload_addressed_traffic_goes_through_the_workloads_waypoint(mesh: Mesh) -> None:
    """A pod bound to a waypoint (``use-waypoint`` on the pod, waypoint for workloads) is
    reached through it when addressed by its own IP (reference 2.3 step 4)."""
    async with running_app("127.0.0.12") as app, running_waypoint(mesh, WAYPOINT_IP, traffic="all"):
        await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
        labels = {"app": "server", "istio.io/use-waypoint": "waypoint"}
        await mesh.add_pod("server", "127.0.0.12", labels=labels)
        await mesh.until(
            lambda d: any(w["name"] == "server" and w["waypoint"] for w in d["workloads"]),
            "pod bound to the waypoint",
        )
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", app.port))
        async with asyncio.timeout(WAIT):
            assert await reader.readline() == f"hello {WAYPOINT_IP}\n".encode()
        writer.close()


async def test_waypoint_refuses_targets_it_does_not_serve(mesh: Mesh) -> None:
    """Istio's TestDirect against a waypoint: served VIP OK; unserved VIP, unserved pod, the
    waypoint's own address, an unknown port and a host name are refused."""
    async with running_app("127.0.0.12") as app, running_waypoint(mesh, WAYPOINT_IP) as wp:
        await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
        await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
        await mesh.add_pod("other", "127.0.0.13", labels={"app": "other"})
        await mesh.service(
            "server", {"app": "server"}, 80, app.port, **{"istio.io/use-waypoint": "waypoint"}
        )
        other_vip = await mesh.service("other", {"app": "other"}, 80, app.port)
        vip = await _bound(mesh)
        credential = mesh.ca.issue_workload_credential(
            Identity.parse("spiffe://cluster.local/ns/shop/sa/sleep")
        )
        connection = await connect(
            wp.hbone,
            context=client_context(credential, mesh.ca.roots_pem),
            expected={WAYPOINT_ID},
            config=HboneConfig(),
        )
        try:
            stream, response = await connection.request(f"{vip}:80")
            assert response.status == 200
            stream.reset(0)
            for authority, status in (
                (f"{other_vip}:80", 400),
                ("127.0.0.13:80", 400),
                (f"{WAYPOINT_IP}:15021", 400),
                (f"{vip}:81", 503),
                ("server.shop.svc.cluster.local:80", 400),
            ):
                with pytest.raises(TunnelRefused) as refused:
                    await connection.request(authority)
                assert refused.value.response_status == status, authority
        finally:
            connection.close()
