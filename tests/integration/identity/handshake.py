"""A loopback mesh connection for tests: a server that checks its client the way ztunnel's
inbound does, and a client that checks its server against an expected identity set."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Collection
from dataclasses import dataclass

from ambientmesh.errors import IdentityError
from ambientmesh.identity import tls
from ambientmesh.identity.spiffe import Identity

TIMEOUT = 10.0
PING = b"ping\n"


class ServerClosed(Exception):
    """The server hung up before answering: it refused the client after the handshake."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    client: Identity | BaseException  # the server identity the client verified, or its error
    server: Identity | BaseException  # the client identity the server verified, or its error


def bare_client_context(roots_pem: bytes) -> ssl.SSLContext:
    """A client context like ours but presenting no certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=roots_pem.decode())
    context.set_alpn_protocols(["h2"])
    return context


async def exchange(
    *,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    expected: Collection[Identity],
    trust_domain: str = "cluster.local",
) -> Outcome:
    """One connection: TLS handshake, both identity checks, one echoed line."""
    loop = asyncio.get_running_loop()
    server_result: asyncio.Future[Identity | BaseException] = loop.create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                await writer.start_tls(server_context)
                peer = tls.verify_client_identity(writer.get_extra_info("ssl_object"), trust_domain)
                server_result.set_result(peer)
                writer.write(await reader.readline())
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, IdentityError) as error:
            if not server_result.done():
                server_result.set_result(error)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client_outcome = await _client(port, client_context, expected)
        async with asyncio.timeout(TIMEOUT):
            server_outcome = await server_result
    return Outcome(client=client_outcome, server=server_outcome)


async def _client(
    port: int, context: ssl.SSLContext, expected: Collection[Identity]
) -> Identity | BaseException:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(TIMEOUT):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=""
            )
            peer = tls.verify_server_identity(writer.get_extra_info("ssl_object"), expected)
            writer.write(PING)
            if await reader.readline() != PING:
                raise ServerClosed("server closed the connection without answering")
            return peer
    except (OSError, ServerClosed, IdentityError) as error:
        return error
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # the server may have torn it down already
                await writer.wait_closed()
