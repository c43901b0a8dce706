"""Connecting to the next hop through a socket factory, and the PROXY v2 header (reference 1.11)."""

from __future__ import annotations

import asyncio
import socket
import struct

from ambientmesh.errors import ConnectFailed, UpstreamTimeout
from ambientmesh.io.sockets import SocketFactory
from ambientmesh.ztunnel.inbound import ProxyProtocolHeader
from ambientmesh.ztunnel.model import SocketAddr

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_PROXY_V2_PROXY_COMMAND = 0x21  # version 2, command PROXY
_TCP_OVER_IPV4 = 0x11
_TCP_OVER_IPV6 = 0x21
PP2_TYPE_PEER_IDENTITY = 0xD0  # Istio's TLV: the client's SPIFFE identity


async def connect(factory: SocketFactory, address: SocketAddr, deadline: float) -> socket.socket:
    """A connected, non-blocking socket to ``address`` made by ``factory``; ConnectFailed or
    UpstreamTimeout (with the address) otherwise."""
    destination = (str(address.ip), address.port)
    try:
        sock = factory(destination)
    except OSError as error:
        raise ConnectFailed(
            f"cannot make a socket for {address}: {error.strerror or error}"
        ) from None
    try:
        async with asyncio.timeout(deadline):
            await asyncio.get_running_loop().sock_connect(sock, destination)
    except TimeoutError:
        sock.close()
        raise UpstreamTimeout(f"connecting to {address} timed out after {deadline:g}s") from None
    except OSError as error:
        sock.close()
        raise ConnectFailed(f"connecting to {address} failed: {error.strerror or error}") from None
    except BaseException:
        sock.close()
        raise
    return sock


def proxy_v2_header(header: ProxyProtocolHeader) -> bytes:
    """The binary PROXY protocol v2 header, with the client identity as TLV 0xD0 when known."""
    source, destination = header.source, header.destination
    # Mixed families cannot be expressed: then both go as IPv6, the IPv4 one mapped.
    v6 = 6 in (source.ip.version, destination.ip.version)
    family = _TCP_OVER_IPV6 if v6 else _TCP_OVER_IPV4
    addresses = (
        _packed(source, v6=v6)
        + _packed(destination, v6=v6)
        + struct.pack("!HH", source.port, destination.port)
    )
    tlvs = b""
    if header.identity is not None:
        value = str(header.identity).encode()
        tlvs = struct.pack("!BH", PP2_TYPE_PEER_IDENTITY, len(value)) + value
    body = addresses + tlvs
    command = struct.pack("!BBH", _PROXY_V2_PROXY_COMMAND, family, len(body))
    return PROXY_V2_SIGNATURE + command + body


def _packed(address: SocketAddr, *, v6: bool) -> bytes:
    if v6 and address.ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + address.ip.packed
    return address.ip.packed
