"""Cluster DNS: every name form resolves inside a pod, through resolv.conf and the router."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from ipaddress import IPv4Address

import dns.message
import dns.query
import dns.rcode
import pytest

from ambientmesh.linux import netns
from ambientmesh.runtime.dns import ClusterDns
from ambientmesh.runtime.dnszone import build_zone, service_fqdn
from tests.namespaced.conftest import DEADLINE, Cluster, run_in_pod

pytestmark = pytest.mark.root

ECHO_VIP = IPv4Address("10.96.0.50")


@pytest.fixture
async def dns_server(cluster: Cluster) -> AsyncIterator[ClusterDns]:
    zone = build_zone(
        "cluster.local", {service_fqdn("echo", "default", "cluster.local"): [ECHO_VIP]}
    )
    server = ClusterDns(zone)
    udp, tcp = cluster.network.dns_sockets()
    with udp, tcp:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(server.serve(udp, tcp))
            try:
                yield server
            finally:
                task.cancel()


@pytest.mark.usefixtures("dns_server")
async def test_every_service_name_form_resolves_in_a_pod(cluster: Cluster) -> None:
    a1 = cluster.pods["a1"]
    for name in ("echo", "echo.default", "echo.default.svc", "echo.default.svc.cluster.local"):
        code, output = await run_in_pod(a1.netns, "getent", "hosts", name)
        assert code == 0, (name, output)
        assert output.split()[0] == str(ECHO_VIP), (name, output)


@pytest.mark.usefixtures("dns_server")
async def test_pythons_resolver_in_a_pod_uses_the_cluster_dns(cluster: Cluster) -> None:
    code, output = await run_in_pod(
        cluster.pods["b1"].netns,
        sys.executable,
        "-c",
        "import socket; print(socket.gethostbyname('echo.default'))",
    )
    assert (code, output.strip()) == (0, str(ECHO_VIP))


async def test_unknown_names_do_not_resolve_and_updates_apply(
    cluster: Cluster, dns_server: ClusterDns
) -> None:
    a1 = cluster.pods["a1"]
    code, _ = await run_in_pod(a1.netns, "getent", "ahostsv4", "other")
    assert code == 2  # not found
    dns_server.update(
        build_zone(
            "cluster.local", {"other.default.svc.cluster.local": [IPv4Address("10.96.0.51")]}
        )
    )
    code, output = await run_in_pod(a1.netns, "getent", "ahostsv4", "other")
    assert (code, output.split()[0]) == (0, "10.96.0.51")


@pytest.mark.usefixtures("dns_server")
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_names_outside_the_domain_are_refused_not_forwarded(
    cluster: Cluster, transport: str
) -> None:
    import socket

    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    sock = netns.socket_in(cluster.pods["a1"].netns, socket.AF_INET, kind)
    query = dns.message.make_query("example.com", "A")
    with sock:
        if transport == "tcp":
            sock.settimeout(DEADLINE)
            sock.connect(("10.96.0.10", 53))
            response = await asyncio.to_thread(
                dns.query.tcp, query, "10.96.0.10", timeout=DEADLINE, sock=sock
            )
        else:
            response = await asyncio.to_thread(
                dns.query.udp, query, "10.96.0.10", timeout=DEADLINE, sock=sock
            )
    assert response.rcode() == dns.rcode.REFUSED
