"""A throwaway two-pod topology for capture tests: client and server namespaces joined by veth."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from ipaddress import IPv4Interface

from ambientmesh.linux import iproute, netns


@dataclass(frozen=True, slots=True, kw_only=True)
class TwoPods:
    client: str  # netns names
    server: str
    client_ip: str
    server_ip: str
    client_ip6: str = "fd77::1"
    server_ip6: str = "fd77::2"


@contextlib.asynccontextmanager
async def two_pods() -> AsyncIterator[TwoPods]:
    """Create the namespaces (unique names) and always delete them, even when the test fails."""
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    pods = TwoPods(
        client=f"amcap-c-{tag}",
        server=f"amcap-s-{tag}",
        client_ip="10.77.0.1",
        server_ip="10.77.0.2",
    )
    veth_c, veth_s = f"vc{tag[-6:]}", f"vs{tag[-6:]}"
    try:
        netns.create(pods.client)
        netns.create(pods.server)
        await iproute.apply(
            [
                iproute.AddVeth(name=veth_c, peer=veth_s, peer_netns=pods.server),
                iproute.AddAddress(dev=veth_c, address=IPv4Interface(f"{pods.client_ip}/24")),
                _add6(veth_c, pods.client_ip6),
                iproute.LinkUp(dev=veth_c),
                iproute.LinkUp(dev="lo"),
            ],
            netns=pods.client,
        )
        await iproute.apply(
            [
                iproute.AddAddress(dev=veth_s, address=IPv4Interface(f"{pods.server_ip}/24")),
                _add6(veth_s, pods.server_ip6),
                iproute.LinkUp(dev=veth_s),
                iproute.LinkUp(dev="lo"),
            ],
            netns=pods.server,
        )
        yield pods
    finally:
        netns.delete(pods.client)
        netns.delete(pods.server)


def _add6(dev: str, address: str) -> iproute.IpArgs:
    # nodad: usable at once, no duplicate-address detection delay.
    return iproute.IpArgs(words=("address", "add", f"{address}/64", "dev", dev, "nodad"))


def app_listener(pod: str, port: int) -> socket.socket:
    """An application's own listening socket in `pod` (no mark, nothing special)."""
    sock = netns.socket_in(pod, socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def app_connect(pod: str, address: tuple[str, int]) -> socket.socket:
    """What an application in `pod` does: a plain connect, with a deadline."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = netns.socket_in(pod, family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(5):
            await asyncio.get_running_loop().sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def accept(listener: socket.socket) -> socket.socket:
    """Accept one connection within a deadline."""
    async with asyncio.timeout(5):
        conn, _ = await asyncio.get_running_loop().sock_accept(listener)
    conn.setblocking(False)
    return conn


async def send_and_echo(client: socket.socket, server: socket.socket, payload: bytes) -> bytes:
    """Send `payload` from client to server and back; return what the client got."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        await loop.sock_sendall(client, payload)
        got = await _read_exactly(server, len(payload))
        await loop.sock_sendall(server, got)
        return await _read_exactly(client, len(payload))


async def _read_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            break
        data += chunk
    return data
