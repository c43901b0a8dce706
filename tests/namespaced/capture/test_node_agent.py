"""The node agent for real: nftables in pod namespaces and ZDS to a ztunnel-like client."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from ambientmesh.capture.apply import capture_installed
from ambientmesh.capture.node_agent import NodeAgent, PodFacts
from ambientmesh.capture.original_dst import original_dst
from ambientmesh.capture.zds import ZdsClient
from ambientmesh.clock import SystemClock
from tests.namespaced.capture.test_zds import Recorder
from tests.namespaced.capture.topology import accept, app_connect, app_listener, two_pods

pytestmark = pytest.mark.root

AMBIENT = {"istio.io/dataplane-mode": "ambient"}


async def test_label_on_then_off_captures_and_uncaptures_a_running_pod(tmp_path: Path) -> None:
    socket_path = str(tmp_path / "ztunnel.sock")
    recorder = Recorder()
    async with two_pods() as pods:
        agent = NodeAgent(node="node-1", socket_path=socket_path)
        client = ZdsClient(
            socket_path, recorder, clock=SystemClock(), rng=random.Random(1), min_backoff=0.01
        )
        web = PodFacts(
            uid="uid-web", name="web", namespace="shop", netns=pods.client, ips=(pods.client_ip,)
        )
        with app_listener(pods.server, 8080) as app:
            async with asyncio.timeout(20), asyncio.TaskGroup() as tg:
                started = asyncio.Event()
                tasks = [tg.create_task(agent.serve(started=started))]
                await started.wait()
                tasks.append(tg.create_task(client.run()))
                await asyncio.wait_for(client.wait_ready(), 5)

                enrolled = await agent.pod_changed(web, AMBIENT)
                assert enrolled.ztunnel == "acked"
                assert enrolled.annotations == {"ambient.istio.io/redirection": "enabled"}
                app_conn = await app_connect(pods.client, (pods.server_ip, 8080))
                with app_conn, await accept(recorder.listeners["uid-web"]) as captured:
                    assert original_dst(captured).port == 8080

                labelled_off = PodFacts(
                    uid="uid-web",
                    name="web",
                    namespace="shop",
                    netns=pods.client,
                    annotations=enrolled.annotations,
                )
                result = await agent.pod_changed(labelled_off, {})
                assert not result.captured
                assert result.annotations == {"ambient.istio.io/redirection": None}
                assert recorder.events == [("start", "uid-web"), ("stop", "uid-web")]
                assert not await capture_installed(pods.client)
                with await app_connect(pods.client, (pods.server_ip, 8080)), await accept(app):
                    pass  # straight to the application, which was never restarted
                for task in tasks:
                    task.cancel()
        await client.stop_all()
