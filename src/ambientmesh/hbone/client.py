"""Opening HBONE connections: TCP through a socket factory, mutual TLS, the peer's identity
checked against the expected set, then the HTTP/2 handshake — all under one deadline."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Collection

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import ConnectFailed, IdentityError, UpstreamTimeout
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.hbone.connection import HboneConnection
from ambientmesh.hbone.errors import TlsFailed
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import ALPN_H2, verify_server_identity
from ambientmesh.io.sockets import SocketAddress, SocketFactory, TcpSocketFactory
from ambientmesh.protocol import Role


async def connect(
    address: SocketAddress,
    *,
    context: ssl.SSLContext,
    expected: Collection[Identity],
    config: HboneConfig | None = None,
    clock: Clock | None = None,
    socket_factory: SocketFactory | None = None,
) -> HboneConnection:
    """An HBONE client connection to ``address`` (a peer's port 15008), ready for streams.

    Raises UpstreamTimeout, ConnectFailed, TlsFailed or IdentityError (the server is not one
    of ``expected``). ``context`` is the source workload's client context.
    """
    config = config or HboneConfig()
    clock = clock or SystemClock()
    sock = (socket_factory or TcpSocketFactory())(address)
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(config.connect_timeout):
            await _tcp_connect(sock, address)
            transport, connection = await _tls_connect(sock, address, context, config, clock)
            _verify(transport, connection, expected)
            if not await connection.ready:
                raise TlsFailed(
                    f"{address[0]}:{address[1]} closed the connection before HTTP/2 SETTINGS "
                    "(did it refuse our certificate?)"
                )
    except TimeoutError:
        _discard(sock, transport)
        # ztunnel's wording: the usual cause is a NetworkPolicy dropping port 15008.
        raise UpstreamTimeout(
            f"connection to {address[0]}:{address[1]} timed out, maybe a NetworkPolicy is "
            f"blocking HBONE port {address[1]}"
        ) from None
    except BaseException:
        _discard(sock, transport)
        raise
    return connection


async def _tcp_connect(sock: socket.socket, address: SocketAddress) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, address)
    except OSError as error:
        raise ConnectFailed(
            f"TCP connect to {address[0]}:{address[1]} failed: {error.strerror or error}"
        ) from None


async def _tls_connect(
    sock: socket.socket,
    address: SocketAddress,
    context: ssl.SSLContext,
    config: HboneConfig,
    clock: Clock,
) -> tuple[asyncio.BaseTransport, HboneConnection]:
    loop = asyncio.get_running_loop()
    made: list[HboneConnection] = []

    def factory() -> HboneConnection:
        made.append(HboneConnection(role=Role.CLIENT, config=config, clock=clock))
        return made[0]

    try:
        # uvloop returns its TLS wrapper as the protocol, so keep our own from the factory.
        transport, _ = await loop.create_connection(
            factory,
            sock=sock,
            ssl=context,
            server_hostname="",  # no SNI: ztunnel never sends one (identities are checked below)
            ssl_handshake_timeout=config.connect_timeout,
        )
    except ssl.SSLError as error:
        raise TlsFailed(
            f"TLS handshake with {address[0]}:{address[1]} failed: {error.reason or error}"
        ) from None
    except OSError as error:
        raise TlsFailed(f"TLS handshake with {address[0]}:{address[1]} failed: {error}") from None
    return transport, made[0]


def _verify(
    transport: asyncio.BaseTransport, connection: HboneConnection, expected: Collection[Identity]
) -> None:
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None or ssl_object.selected_alpn_protocol() != ALPN_H2:
        raise TlsFailed("server did not negotiate ALPN h2")
    try:
        identity = verify_server_identity(ssl_object, expected)
    except IdentityError as error:
        raise IdentityError(f"refusing HBONE server: {error.message}") from None
    connection.peer_identity = identity
    connection.extra = {
        "peer_identity": identity,
        "peername": transport.get_extra_info("peername"),
        "sockname": transport.get_extra_info("sockname"),
        "ssl_object": ssl_object,
    }


def _discard(sock: socket.socket, transport: asyncio.BaseTransport | None) -> None:
    if transport is not None:
        transport.abort()  # type: ignore[attr-defined]
    else:
        sock.close()
