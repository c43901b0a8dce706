"""The routed cluster network: pods reach each other across nodes and nothing else."""

from __future__ import annotations

import asyncio
import errno
from ipaddress import IPv4Address, IPv4Network

import pytest

from ambientmesh.linux import iproute, netns
from ambientmesh.runtime import names
from ambientmesh.runtime.network import ETC_NETNS, ClusterNetwork
from tests.namespaced.conftest import (
    DEADLINE,
    Cluster,
    ask_whoami,
    cluster_network,
    connect_error,
    unique_cluster_name,
    whoami_server,
)

pytestmark = pytest.mark.root


async def test_pods_on_different_nodes_reach_each_other_without_nat(cluster: Cluster) -> None:
    a1, b1 = cluster.pods["a1"], cluster.pods["b1"]
    async with whoami_server(b1.netns, b1.ip, 8080, "b1"):
        name, client = await ask_whoami(a1.netns, b1.ip, 8080)
    assert name == "b1"
    assert client.split(":")[0] == str(a1.ip)


async def test_pods_on_one_node_reach_each_other(cluster: Cluster) -> None:
    a1, a2 = cluster.pods["a1"], cluster.pods["a2"]
    async with whoami_server(a2.netns, a2.ip, 8080, "a2"):
        assert (await ask_whoami(a1.netns, a2.ip, 8080))[0] == "a2"


async def test_nodes_reach_pods_on_every_node(cluster: Cluster) -> None:
    b1 = cluster.pods["b1"]
    async with whoami_server(b1.netns, b1.ip, 8080, "b1"):
        for node in cluster.nodes.values():
            name, client = await ask_whoami(node.netns, b1.ip, 8080)
            assert (name, client.split(":")[0]) == ("b1", str(node.ip))


@pytest.mark.parametrize("where", ["pod", "node", "router"])
async def test_addresses_outside_the_cluster_fail_at_once(cluster: Cluster, where: str) -> None:
    source = {
        "pod": cluster.pods["a1"].netns,
        "node": cluster.nodes["node-1"].netns,
        "router": cluster.network.router_netns,
    }[where]
    for outside in ("192.0.2.1", "8.8.8.8", "10.0.0.1"):
        assert await connect_error(source, outside, 80) == errno.ENETUNREACH, outside
    # Loopback stays inside the namespace: nothing listens, so it is refused at once.
    assert await connect_error(source, "127.1.2.3", 80) == errno.ECONNREFUSED


async def test_cluster_addresses_nobody_holds_fail_at_once(cluster: Cluster) -> None:
    a1 = cluster.pods["a1"]
    for address in ("10.244.9.9", "10.244.1.200", "10.244.2.200", "10.96.123.123"):
        assert await connect_error(a1.netns, address, 80) == errno.EHOSTUNREACH, address


async def test_pod_namespace_holds_only_its_address_routes_and_resolv_conf(
    cluster: Cluster,
) -> None:
    a1 = cluster.pods["a1"]
    assert await iproute.link_names(netns=a1.netns) == ["lo", "eth0"]
    routes = {route["dst"] for route in await iproute.show("route", netns=a1.netns)}
    assert routes == {"10.244.0.0/16", "10.96.0.0/16"}
    resolv = (ETC_NETNS / a1.netns / "resolv.conf").read_text()
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "nameserver 10.96.0.10" in resolv
    assert "options ndots:5" in resolv


async def test_host_namespace_gets_no_interface_and_no_route(cluster: Cluster) -> None:
    ours = set()
    for name in cluster.network.namespaces():
        ours |= set(await iproute.link_names(netns=name)) - {"lo", "eth0"}
    assert ours, "the cluster's namespaces should hold hashed link names"
    host_links = set(await iproute.link_names())
    assert not ours & host_links
    cluster_ranges = (IPv4Network("10.244.0.0/16"), IPv4Network("10.96.0.0/16"))
    for route in await iproute.show("route"):
        if route["dst"] == "default":
            continue
        destination = IPv4Network(route["dst"] if "/" in route["dst"] else route["dst"] + "/32")
        assert not any(destination.overlaps(block) for block in cluster_ranges), route


async def test_teardown_removes_everything_and_is_safe_twice() -> None:
    name = unique_cluster_name("td")
    async with cluster_network(name, {"node-1": ("p1",), "node-2": ("p2",)}) as made:
        created = made.network.namespaces()
        assert len(created) == 5
        assert all((ETC_NETNS / n).is_dir() for n in created if n != made.network.router_netns)
        # A process left inside a pod must not keep the namespace alive.
        stray = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", made.pods["p1"].netns, "sh", "-c", "echo inside; exec sleep 60",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert stray.stdout is not None
        async with asyncio.timeout(DEADLINE):
            assert await stray.stdout.readline() == b"inside\n"
    try:
        assert [n for n in netns.names() if names.owns_netns(name, n)] == []
        assert [d for d in ETC_NETNS.glob("*") if names.owns_netns(name, d.name)] == []
        async with asyncio.timeout(DEADLINE):
            assert await stray.wait() == -9
        assert await ClusterNetwork(name).teardown() == []
    finally:
        if stray.returncode is None:
            stray.kill()
            await stray.wait()


async def test_two_clusters_with_different_names_coexist() -> None:
    layout = {"node-1": ("web",)}
    async with (
        cluster_network(unique_cluster_name("c1"), layout) as one,
        cluster_network(unique_cluster_name("c2"), layout) as two,
    ):
        web1, web2 = one.pods["web"], two.pods["web"]
        assert web1.ip == web2.ip == IPv4Address("10.244.1.2")
        assert web1.netns != web2.netns
        async with (
            whoami_server(web1.netns, web1.ip, 80, "one"),
            whoami_server(web2.netns, web2.ip, 80, "two"),
        ):
            assert (await ask_whoami(one.pods["web"].netns, web1.ip, 80))[0] == "one"
            assert (await ask_whoami(two.nodes["node-1"].netns, web2.ip, 80))[0] == "two"
            await one.network.teardown()
            assert (await ask_whoami(two.nodes["node-1"].netns, web2.ip, 80))[0] == "two"


async def test_creating_an_existing_cluster_or_pod_is_refused(cluster: Cluster) -> None:
    from ambientmesh.errors import AlreadyExists

    with pytest.raises(AlreadyExists, match="tear it down first"):
        await cluster.network.create()
    node = cluster.nodes["node-1"]
    with pytest.raises(AlreadyExists):
        await cluster.network.add_pod(node, "default", "a1", IPv4Address("10.244.1.50"))
    # The refused pod changed nothing: a1 still answers at its address.
    a1 = cluster.pods["a1"]
    async with whoami_server(a1.netns, a1.ip, 81, "a1"):
        assert (await ask_whoami(node.netns, a1.ip, 81))[0] == "a1"


async def test_removing_a_pod_frees_its_address_on_the_node(cluster: Cluster) -> None:
    a2 = cluster.pods["a2"]
    await cluster.network.remove_pod(a2)
    await cluster.network.remove_pod(a2)  # safe twice
    assert not netns.exists(a2.netns)
    assert a2.node_link not in await iproute.link_names(netns=a2.node_netns)
    assert await connect_error(cluster.pods["a1"].netns, a2.ip, 80) == errno.EHOSTUNREACH
