"""With the control plane gone, ztunnels keep serving with their last configuration and
certificates: existing and new connections to known services work for two minutes (slow)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.namespaced.ztunnel.cluster import AMBIENT, connect_in, greeting, mesh_cluster

OUTAGE = 120.0  # seconds without a control plane
INTERVAL = 1.0  # a new connection, and a round trip on the old one, every second

# The outage alone is as long as the suite's per-test limit: allow for the cluster around it.
pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(OUTAGE + 60)]


async def test_connections_keep_working_for_two_minutes_without_the_control_plane() -> None:
    async with mesh_cluster() as cluster:
        await cluster.namespace("mesh", AMBIENT)
        sleep = await cluster.add_pod("sleep", "node-1", service_account="sleep")
        await cluster.add_pod("server-0", "node-2", labels={"app": "server"}, app=[])
        vip = await cluster.service("server", {"app": "server"})
        await cluster.until_dump(lambda d: len(d["services"]) == 1, "service known")
        sock = await connect_in(sleep.netns, vip, 9000)
        reader, writer = await asyncio.open_connection(sock=sock)
        assert cluster.control_plane is not None
        await cluster.control_plane.stop(signal.SIGKILL)
        rounds = 0
        deadline = time.monotonic() + OUTAGE
        try:
            while time.monotonic() < deadline:
                payload = f"round {rounds}".encode()
                writer.write(payload)
                async with asyncio.timeout(5):
                    assert await reader.readexactly(len(payload)) == payload, rounds
                line = await greeting(sleep.netns, vip)
                assert line is not None, rounds
                assert "hello from server-0" in line, rounds
                rounds += 1
                await asyncio.sleep(INTERVAL)  # the pace of the check itself
        finally:
            writer.close()
        dump = await cluster.ztunnel_dump("node-1")
        assert not dump["discovery"]["connected"]
        assert rounds >= OUTAGE / INTERVAL * 0.9
