"""Capture inside real pod namespaces: redirection, original destination, marks, spoofed sources."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from ambientmesh.capture.apply import capture_installed, install_capture, remove_capture
from ambientmesh.capture.original_dst import local_address, original_dst, peer_address
from ambientmesh.capture.rules import TABLE_NAMES
from ambientmesh.capture.sockets import connect_from_pod, connect_spoofed, pod_listener
from ambientmesh.linux import commands, nftables
from tests.namespaced.capture.topology import (
    TwoPods,
    accept,
    app_connect,
    app_listener,
    send_and_echo,
    two_pods,
)

pytestmark = pytest.mark.root

ZTUNNEL_PORTS = (15001, 15006, 15008)
Hold = Callable[[socket.socket], socket.socket]


@pytest.fixture
async def pods() -> AsyncIterator[TwoPods]:
    async with two_pods() as created:
        await install_capture(created.client)
        await install_capture(created.server)
        yield created


@pytest.fixture
def hold() -> Iterator[Hold]:
    """`hold(sock)` closes `sock` when the test ends, pass or fail."""
    with contextlib.ExitStack() as stack:
        yield stack.enter_context


def listeners(hold: Hold, pod: str) -> dict[int, socket.socket]:
    """15001/15006/15008 bound inside `pod` from this process, as ztunnel does."""
    return {port: hold(pod_listener(pod, port)) for port in ZTUNNEL_PORTS}


def assert_nothing_accepted(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        listener.accept()


async def test_outbound_tcp_is_redirected_to_15001_and_original_dst_recovers_it(
    pods: TwoPods, hold: Hold
) -> None:
    client_side = listeners(hold, pods.client)
    hold(app_listener(pods.server, 8080))
    app = hold(await app_connect(pods.client, (pods.server_ip, 8080)))
    captured = hold(await accept(client_side[15001]))
    dst = original_dst(captured)
    assert (str(dst.ip), dst.port) == (pods.server_ip, 8080)
    assert peer_address(captured) == local_address(app)
    assert await send_and_echo(app, captured, b"hello") == b"hello"


async def test_socket_marked_0x539_is_not_captured(pods: TwoPods, hold: Hold) -> None:
    client_side, server_side = listeners(hold, pods.client), listeners(hold, pods.server)
    marked = hold(await connect_from_pod(pods.client, (pods.server_ip, 15008), deadline=5))
    arrived = hold(await accept(server_side[15008]))
    assert str(peer_address(arrived).ip) == pods.client_ip
    assert await send_and_echo(marked, arrived, b"x") == b"x"
    assert_nothing_accepted(client_side[15001])


async def test_inbound_to_app_port_lands_on_15006_with_original_dst(
    pods: TwoPods, hold: Hold
) -> None:
    server_side = listeners(hold, pods.server)
    app = hold(app_listener(pods.server, 8080))
    # A marked socket plays the client's ztunnel, so the client side lets it through.
    client = hold(await connect_from_pod(pods.client, (pods.server_ip, 8080), deadline=5))
    captured = hold(await accept(server_side[15006]))
    dst = original_dst(captured)
    assert (str(dst.ip), dst.port) == (pods.server_ip, 8080)
    assert str(peer_address(captured).ip) == pods.client_ip
    assert await send_and_echo(client, captured, b"in") == b"in"
    assert_nothing_accepted(app)


async def test_inbound_to_15008_reaches_the_hbone_listener_directly(
    pods: TwoPods, hold: Hold
) -> None:
    server_side = listeners(hold, pods.server)
    client = hold(await connect_from_pod(pods.client, (pods.server_ip, 15008), deadline=5))
    arrived = hold(await accept(server_side[15008]))
    assert await send_and_echo(client, arrived, b"hbone") == b"hbone"
    assert_nothing_accepted(server_side[15006])


async def test_pod_calling_its_own_ip_is_not_captured_like_istio(pods: TwoPods, hold: Hold) -> None:
    """Istio's nat rule `oifname lo ... accept`: a pod dialing its own IP stays plain."""
    server_side = listeners(hold, pods.server)
    app = hold(app_listener(pods.server, 8080))
    client = hold(await app_connect(pods.server, (pods.server_ip, 8080)))
    arrived = hold(await accept(app))
    assert peer_address(arrived) == local_address(client)
    assert await send_and_echo(client, arrived, b"self") == b"self"
    for port in ZTUNNEL_PORTS:
        assert_nothing_accepted(server_side[port])


async def test_spoofed_upstream_keeps_the_client_ip_and_replies_return(
    pods: TwoPods, hold: Hold
) -> None:
    """Reference 2.5/2.6: ztunnel dials the app from inside the pod as the client's IP."""
    server_side = listeners(hold, pods.server)
    app = hold(app_listener(pods.server, 8080))
    hold(await connect_from_pod(pods.client, (pods.server_ip, 8080), deadline=5))
    inbound = hold(await accept(server_side[15006]))
    peer_ip = str(peer_address(inbound).ip)
    dst = original_dst(inbound)
    upstream = hold(await connect_spoofed(pods.server, peer_ip, dst.as_tuple(), deadline=5))
    at_app = hold(await accept(app))
    assert str(peer_address(at_app).ip) == pods.client_ip
    assert str(local_address(upstream).ip) == pods.client_ip
    # Bytes both ways prove the replies came back through the connmark route.
    payload = b"spoofed" * 1000
    assert await send_and_echo(upstream, at_app, payload) == payload


async def test_removing_capture_restores_direct_traffic_without_restarting_the_app(
    pods: TwoPods, hold: Hold
) -> None:
    client_side = listeners(hold, pods.client)
    app = hold(app_listener(pods.server, 8080))
    hold(await app_connect(pods.client, (pods.server_ip, 8080)))
    hold(await accept(client_side[15001]))
    await remove_capture(pods.client)
    await remove_capture(pods.server)
    client = hold(await app_connect(pods.client, (pods.server_ip, 8080)))
    arrived = hold(await accept(app))  # the very same listening socket as before
    assert peer_address(arrived) == local_address(client)
    assert await send_and_echo(client, arrived, b"direct") == b"direct"
    assert_nothing_accepted(client_side[15001])


async def test_install_is_idempotent_and_remove_leaves_nothing(pods: TwoPods) -> None:
    await install_capture(pods.client)  # second time over the fixture's install
    assert await capture_installed(pods.client)
    assert (await rule_lines(pods.client)).count("fwmark 0x111/0xfff lookup 100") == 1
    await remove_capture(pods.client)
    await remove_capture(pods.client)  # and removal twice
    assert not await capture_installed(pods.client)
    tables = {name for _, name in await nftables.tables(netns=pods.client)}
    assert tables.isdisjoint(TABLE_NAMES)
    assert "lookup 100" not in await rule_lines(pods.client)
    assert "lookup 100" not in await rule_lines(pods.client, version=6)


async def test_ztunnel_listeners_share_ports_with_so_reuseport(pods: TwoPods, hold: Hold) -> None:
    """A restarted ztunnel binds beside the draining one (reference 2.1, INPOD_PORT_REUSE)."""
    old, new = listeners(hold, pods.client), listeners(hold, pods.client)
    assert old[15001].getsockname()[1] == new[15001].getsockname()[1] == 15001
    old[15001].close()
    hold(await app_connect(pods.client, (pods.server_ip, 9999)))
    conn = hold(await accept(new[15001]))
    assert original_dst(conn).port == 9999


async def test_original_dst_of_an_unredirected_connection_is_its_own_address(
    pods: TwoPods, hold: Hold
) -> None:
    server_side = listeners(hold, pods.server)
    hold(await connect_from_pod(pods.client, (pods.server_ip, 15008), deadline=5))
    arrived = hold(await accept(server_side[15008]))
    dst = original_dst(arrived)
    assert dst.ip == ipaddress.ip_address(pods.server_ip)
    assert dst.port == 15008


async def test_ipv6_outbound_and_inbound_capture_with_original_dst(
    pods: TwoPods, hold: Hold
) -> None:
    """The IPv6 mirror: ip6 rules, IP6T_SO_ORIGINAL_DST, and a dual-stack ztunnel listener."""
    client_side, server_side = listeners(hold, pods.client), listeners(hold, pods.server)
    app = hold(await app_connect(pods.client, (pods.server_ip6, 8080)))
    captured = hold(await accept(client_side[15001]))
    assert str(original_dst(captured)) == f"[{pods.server_ip6}]:8080"
    assert await send_and_echo(app, captured, b"six") == b"six"
    hold(await connect_from_pod(pods.client, (pods.server_ip6, 8080), deadline=5))
    inbound = hold(await accept(server_side[15006]))
    assert str(original_dst(inbound)) == f"[{pods.server_ip6}]:8080"
    assert str(peer_address(inbound).ip) == pods.client_ip6


async def test_ipv6_spoofed_upstream_replies_return(pods: TwoPods, hold: Hold) -> None:
    app = hold(app_listener(pods.server, 8080))
    upstream = hold(
        await connect_spoofed(pods.server, pods.client_ip6, (pods.server_ip6, 8080), deadline=5)
    )
    at_app = hold(await accept(app))
    assert str(peer_address(at_app).ip) == pods.client_ip6
    assert await send_and_echo(upstream, at_app, b"v6" * 5000) == b"v6" * 5000


async def rule_lines(pod: str, *, version: int = 4) -> str:
    return await commands.run(["ip", f"-{version}", "rule", "show"], netns_name=pod)


async def test_capture_of_a_missing_namespace_fails_clearly() -> None:
    from ambientmesh.capture.errors import CaptureFailed

    with pytest.raises(CaptureFailed, match="amcap-missing"):
        async with asyncio.timeout(10):
            await install_capture("amcap-missing-namespace")


async def test_without_the_policy_route_spoofed_replies_go_astray(pods: TwoPods) -> None:
    """The control for the spoofed test: drop the fwmark rule and the reply leaves the pod."""
    await commands.run(
        ["ip", "-4", "rule", "del", "pref", "32764", "fwmark", "0x111/0xfff", "lookup", "100"],
        netns_name=pods.server,
    )
    from ambientmesh.errors import ConnectFailed, UpstreamTimeout

    with app_listener(pods.server, 8080), pytest.raises((UpstreamTimeout, ConnectFailed)):
        await connect_spoofed(pods.server, pods.client_ip, (pods.server_ip, 8080), deadline=1)
