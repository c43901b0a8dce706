"""The building blocks together: the echo app as a container, probed, published, resolved."""

from __future__ import annotations

import asyncio
import json
import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ambientmesh.runtime import kubeproxy
from ambientmesh.runtime.containers import Container, State
from ambientmesh.runtime.dns import ClusterDns
from ambientmesh.runtime.dnszone import build_zone, service_fqdn
from ambientmesh.runtime.kubeproxy import Endpoint, ServicePort
from ambientmesh.runtime.prober import ProbeTarget, ReadinessProber
from ambientmesh.runtime.probes import HttpGet, Probe
from ambientmesh.runtime.processes import ContainerSpec, PodContext, environment
from ambientmesh.runtime.restarts import RestartPolicy
from tests.namespaced.conftest import Cluster, run_in_pod

pytestmark = [pytest.mark.root, pytest.mark.slow]

ECHO_VIP = IPv4Address("10.96.0.60")
FETCH = """
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    print(response.read().decode())
"""


async def test_echo_service_answers_a_pod_on_another_node_by_name(
    cluster: Cluster, tmp_path: Path
) -> None:
    server, client = cluster.pods["b1"], cluster.pods["a1"]
    pod = PodContext(
        name="b1", namespace="default", ip=server.ip, node_name="node-2", netns=server.netns
    )
    spec = ContainerSpec.from_kubernetes(
        name="echo",
        command=[sys.executable, "-m", "ambientmesh.apps.echo"],
        env={"ECHO_HTTP_PORT": "8080"},
    )
    echo = Container(spec, pod, log_path=tmp_path / "echo.log", restart_policy=RestartPolicy.ALWAYS)
    prober = ReadinessProber(
        Probe(action=HttpGet(port=8080), period=0.1),
        ProbeTarget(netns=server.netns, ip=server.ip, env=environment(spec, pod)),
    )
    zone = build_zone(
        "cluster.local", {service_fqdn("echo", "default", "cluster.local"): [ECHO_VIP]}
    )
    udp, tcp = cluster.network.dns_sockets()
    with udp, tcp:
        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(echo.run()),
                group.create_task(prober.run()),
                group.create_task(ClusterDns(zone).serve(udp, tcp)),
            ]
            try:
                await prober.wait_until(True)
                assert echo.status.state == State.RUNNING
                published = ServicePort(
                    name="default/echo:http",
                    vip=ECHO_VIP,
                    port=80,
                    endpoints=(Endpoint(ip=server.ip, port=8080),),
                )
                for node in cluster.nodes.values():
                    await kubeproxy.apply([published], node_ip=node.ip, netns=node.netns)
                code, output = await run_in_pod(
                    client.netns, sys.executable, "-c", FETCH, "http://echo/hello?format=json"
                )
            finally:
                await echo.stop(grace=5)
                for task in tasks[1:]:
                    task.cancel()
    assert code == 0, output + (tmp_path / "echo.log").read_text()
    answer = json.loads(output)
    assert answer["pod"] == "b1"
    assert answer["client"].split(":")[0] == str(client.ip)
    assert answer["headers"]["Host"] == "echo"
