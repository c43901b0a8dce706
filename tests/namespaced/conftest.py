"""Throwaway cluster networks for namespaced tests, and small servers and clients inside them.

Every cluster gets a name unique to this process and test, and is torn down even when the
test fails. Traffic stays inside the namespaces the test created.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from ambientmesh.linux import netns
from ambientmesh.runtime.ipam import pod_pool
from ambientmesh.runtime.network import ClusterNetwork, NodeNetwork, PodNetwork

DEADLINE = 10.0  # seconds any single network step in these tests may take


def unique_cluster_name(tag: str = "t") -> str:
    return f"{tag}{os.getpid() % 100000}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    network: ClusterNetwork
    nodes: dict[str, NodeNetwork]
    pods: dict[str, PodNetwork]


@asynccontextmanager
async def cluster_network(
    name: str, layout: dict[str, tuple[str, ...]], *, namespace: str = "default"
) -> AsyncIterator[Cluster]:
    """A cluster with nodes `node-<i>` (from 1) holding the named pods; always torn down."""
    network = ClusterNetwork(name)
    try:
        await network.create()
        nodes, pods = {}, {}
        for index, (node_name, pod_names) in enumerate(layout.items(), start=1):
            node = await network.add_node(node_name, index)
            nodes[node_name] = node
            pool = pod_pool(network.addressing, index)
            for pod_name in pod_names:
                pods[pod_name] = await network.add_pod(
                    node, namespace, pod_name, pool.allocate(pod_name)
                )
        yield Cluster(network=network, nodes=nodes, pods=pods)
    finally:
        await network.teardown()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """Two nodes: a1 and a2 on node-1, b1 on node-2, in namespace `default`."""
    layout = {"node-1": ("a1", "a2"), "node-2": ("b1",)}
    async with cluster_network(unique_cluster_name(), layout) as made:
        yield made


# ---------------------------------------------------------------- servers and clients


Greeting = Callable[[str], bytes]


@asynccontextmanager
async def whoami_server(
    where: str, ip: IPv4Address | str, port: int, name: str
) -> AsyncIterator[asyncio.Server]:
    """A TCP server in namespace `where` that answers `<name> <client ip:port>` and closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        writer.write(f"{name} {peer[0]}:{peer[1]}\n".encode())
        await writer.drain()
        writer.close()

    sock = netns.socket_in(where, socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((str(ip), port))
    sock.listen(64)
    sock.setblocking(False)
    server = await asyncio.start_server(answer, sock=sock)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


async def connect_from(where: str, ip: IPv4Address | str, port: int) -> socket.socket:
    """A TCP connection from inside `where`; raises the OSError connect() got."""
    sock = netns.socket_in(where, socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(DEADLINE):
            await asyncio.get_running_loop().sock_connect(sock, (str(ip), port))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_error(where: str, ip: IPv4Address | str, port: int) -> int:
    """The errno a TCP connect from `where` fails with (fails the test if it connects)."""
    try:
        sock = await connect_from(where, ip, port)
    except OSError as exc:
        return exc.errno or 0
    sock.close()
    raise AssertionError(f"connecting from {where} to {ip}:{port} unexpectedly worked")


async def ask_whoami(where: str, ip: IPv4Address | str, port: int) -> tuple[str, str]:
    """(server name, client address it saw) from a whoami server, asked from `where`."""
    sock = await connect_from(where, ip, port)
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        async with asyncio.timeout(DEADLINE):
            line = await reader.readline()
        writer.close()
    finally:
        sock.close()
    name, client = line.decode().split()
    return name, client


async def run_in_pod(
    pod_netns: str, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run a command the way `ambientmesh exec` will: `ip netns exec`; (exit code, stdout)."""
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", pod_netns, *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    async with asyncio.timeout(DEADLINE):
        output, _ = await process.communicate()
    return process.returncode or 0, output.decode()
