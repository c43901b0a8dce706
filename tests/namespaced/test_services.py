"""Service VIPs through each node's nftables table (the kube-proxy role)."""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address

import pytest

from ambientmesh.linux import netns, nftables
from ambientmesh.runtime import kubeproxy
from ambientmesh.runtime.kubeproxy import Endpoint, ServicePort
from ambientmesh.runtime.network import PodNetwork
from tests.namespaced.conftest import (
    DEADLINE,
    Cluster,
    ask_whoami,
    connect_error,
    connect_from,
    whoami_server,
)

pytestmark = pytest.mark.root

VIP = IPv4Address("10.96.0.50")


async def publish(cluster: Cluster, services: Iterable[ServicePort]) -> None:
    listed = list(services)
    for node in cluster.nodes.values():
        await kubeproxy.apply(listed, node_ip=node.ip, netns=node.netns)


def service(*pods: PodNetwork, port: int = 80, target: int = 8080) -> ServicePort:
    endpoints = tuple(Endpoint(ip=pod.ip, port=target) for pod in pods)
    return ServicePort(name="default/web:http", vip=VIP, port=port, endpoints=endpoints)


async def test_vip_spreads_new_connections_over_endpoints_on_both_nodes(cluster: Cluster) -> None:
    a1, a2, b1 = (cluster.pods[name] for name in ("a1", "a2", "b1"))
    await publish(cluster, [service(a2, b1)])
    async with (
        whoami_server(a2.netns, a2.ip, 8080, "a2"),
        whoami_server(b1.netns, b1.ip, 8080, "b1"),
    ):
        answers = [await ask_whoami(a1.netns, VIP, 80) for _ in range(40)]
    assert {name for name, _ in answers} == {"a2", "b1"}  # 2**-39 odds of a false failure
    # Both on the client's node and across nodes, the endpoint sees the client's own address.
    assert {client.split(":")[0] for _, client in answers} == {str(a1.ip)}


async def test_vip_without_ready_endpoints_rejects_at_once(cluster: Cluster) -> None:
    await publish(cluster, [service()])
    for source in (cluster.pods["a1"].netns, cluster.nodes["node-2"].netns):
        with pytest.raises(ConnectionRefusedError):  # a reset, not a timeout
            await connect_from(source, VIP, 80)
    # Another port of the same VIP is not a Service port: the router says unreachable.
    assert await connect_error(cluster.pods["a1"].netns, VIP, 81) == errno.EHOSTUNREACH


async def test_pod_reaching_itself_through_a_vip_is_masqueraded_to_its_node(
    cluster: Cluster,
) -> None:
    """Hairpin: like kube-proxy, the pod sees the node's address, since its own would be dropped."""
    a1 = cluster.pods["a1"]
    await publish(cluster, [service(a1)])
    async with whoami_server(a1.netns, a1.ip, 8080, "a1"):
        name, client = await ask_whoami(a1.netns, VIP, 80)
    assert name == "a1"
    assert client.split(":")[0] == str(cluster.nodes["node-1"].ip)


@pytest.mark.parametrize("target", ["a2", "b1"])
async def test_vip_reaches_an_endpoint_on_the_same_or_another_node(
    cluster: Cluster, target: str
) -> None:
    a1, endpoint = cluster.pods["a1"], cluster.pods[target]
    await publish(cluster, [service(endpoint)])
    async with whoami_server(endpoint.netns, endpoint.ip, 8080, target):
        name, client = await ask_whoami(a1.netns, VIP, 80)
    assert (name, client.split(":")[0]) == (target, str(a1.ip))


async def test_node_itself_reaches_a_vip(cluster: Cluster) -> None:
    b1 = cluster.pods["b1"]
    await publish(cluster, [service(b1)])
    async with whoami_server(b1.netns, b1.ip, 8080, "b1"):
        assert (await ask_whoami(cluster.nodes["node-1"].netns, VIP, 80))[0] == "b1"


async def test_udp_vip_is_translated_too(cluster: Cluster) -> None:
    a1, b1 = cluster.pods["a1"], cluster.pods["b1"]
    udp = ServicePort(
        name="default/dns:udp",
        vip=VIP,
        port=53,
        protocol="UDP",
        endpoints=(Endpoint(ip=b1.ip, port=5353),),
    )
    await publish(cluster, [udp])
    server = netns.socket_in(b1.netns, socket.AF_INET, socket.SOCK_DGRAM)
    client = netns.socket_in(a1.netns, socket.AF_INET, socket.SOCK_DGRAM)
    with server, client:
        server.bind((str(b1.ip), 5353))
        server.settimeout(DEADLINE)
        client.settimeout(DEADLINE)
        client.connect((str(VIP), 53))
        client.send(b"ping")
        data, sender = await asyncio.to_thread(server.recvfrom, 100)
        assert (data, sender[0]) == (b"ping", str(a1.ip))
        server.sendto(b"pong", sender)
        assert await asyncio.to_thread(client.recv, 100) == b"pong"  # un-DNATed back to the VIP


async def test_apply_replaces_the_whole_table(cluster: Cluster) -> None:
    a1, b1 = cluster.pods["a1"], cluster.pods["b1"]
    node = cluster.nodes["node-1"]
    await publish(cluster, [service(b1)])
    await publish(cluster, [service()])
    assert await nftables.tables(netns=node.netns) == [("ip", kubeproxy.TABLE)]
    assert "10.244.2.2" not in await nftables.list_table("ip", kubeproxy.TABLE, netns=node.netns)
    async with whoami_server(b1.netns, b1.ip, 8080, "b1"):
        with pytest.raises(ConnectionRefusedError):
            await connect_from(a1.netns, VIP, 80)
    await kubeproxy.remove(netns=node.netns)
    await kubeproxy.remove(netns=node.netns)  # safe twice
    assert await nftables.tables(netns=node.netns) == []
