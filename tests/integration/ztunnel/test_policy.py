"""L4 authorization at the destination ztunnel, on loopback: deny, STRICT, and live re-checks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ambientmesh.ztunnel.model import SocketAddr
from tests.integration.ztunnel.harness import WAIT, Mesh, closed_by_peer, running_app


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    }


ALLOW_ONLY_ELSE = {
    "selector": {"matchLabels": {"app": "server"}},
    "action": "ALLOW",
    "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/something/sa/else"]}}]}],
}


async def _has_policy(mesh: Mesh, name: str) -> None:
    await mesh.until(lambda d: any(p["name"] == name for p in d["policies"]), f"policy {name}")


async def test_connection_not_allowed_by_policy_is_refused_and_counted(mesh: Mesh) -> None:
    """Scenario 19 in miniature: only another principal is allowed, so our client is denied
    (401 on the CONNECT, a reset for the application) and the destination counts DENY."""
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
        await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
        await mesh.apply(policy("allow-else", ALLOW_ONLY_ELSE))
        await _has_policy(mesh, "allow-else")
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", app.port))
        await closed_by_peer(reader)
        writer.close()
        assert not app.peers  # the application never saw it
        await mesh.counted(
            "istio_tcp_connections_failed_total",
            1,
            reporter="destination",
            response_flags="DENY",
            source_principal="spiffe://cluster.local/ns/shop/sa/sleep",
        )


async def test_policy_change_closes_a_live_connection_within_one_second(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("client", "127.0.0.11", service_account="sleep")
        await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
        await mesh.until(lambda d: len(d["workloads"]) == 2, "workloads")
        reader, writer = await mesh.dial("127.0.0.11", SocketAddr.of("127.0.0.12", app.port))
        async with asyncio.timeout(WAIT):
            assert await reader.readline() == b"hello 127.0.0.11\n"
        started = time.monotonic()
        await mesh.apply(policy("allow-else", ALLOW_ONLY_ELSE))
        await closed_by_peer(reader)
        assert time.monotonic() - started < 1.0
        writer.close()
        await mesh.counted(
            "istio_tcp_connections_closed_total", 1, reporter="destination", response_flags="DENY"
        )


async def test_strict_peer_authentication_refuses_plaintext_but_not_hbone(mesh: Mesh) -> None:
    async with running_app("127.0.0.12") as app:
        await mesh.add_pod("client", "127.0.0.11")
        await mesh.add_pod("server", "127.0.0.12", labels={"app": "server"})
        await mesh.apply(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "PeerAuthentication",
                "metadata": {"name": "strict", "namespace": "shop"},
                "spec": {"mtls": {"mode": "STRICT"}},
            }
        )
        await mesh.until(
            lambda d: (
                any(w["name"] == "server" and w["authorizationPolicies"] for w in d["workloads"])
                and len(d["policies"]) >= 1
            ),
            "STRICT applied to the server",
        )
        destination = SocketAddr.of("127.0.0.12", app.port)
        reader, writer = await mesh.dial_plaintext("127.0.0.40", "127.0.0.12", destination)
        await closed_by_peer(reader)
        writer.close()
        reader, writer = await mesh.dial("127.0.0.11", destination)
        async with asyncio.timeout(WAIT):
            assert await reader.readline() == b"hello 127.0.0.11\n"
        writer.close()
        assert app.peers == ["127.0.0.11"]
