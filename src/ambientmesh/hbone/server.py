"""The HBONE server (port 15008): mutual TLS, then one handler call per CONNECT stream.

The caller owns the listening socket and supplies the TLS context, or a function from the
local address to a context (an in-pod listener presents the certificate of its pod). Each
CONNECT is handed, with the client's verified identity and addresses, to the caller's async
handler, which decides: reject with a status, forward to an upstream socket it connected,
or terminate the tunnel in a protocol of its own (waypoints).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.errors import IdentityError, InvalidInput, MeshError
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.hbone.connection import HboneConnection
from ambientmesh.hbone.errors import TlsFailed
from ambientmesh.hbone.stream import TunnelStream
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import ALPN_H2, verify_client_identity
from ambientmesh.io.relay import Relay
from ambientmesh.io.result import CloseReason, RelayResult
from ambientmesh.io.sockets import SocketAddress, set_nodelay
from ambientmesh.protocol import Authority, ErrorCode, Headers, RequestReceived, Role, header_value

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRequest:
    """One CONNECT, with the facts a handler decides on."""

    authority: Authority
    headers: Headers  # baggage, forwarded, traceparent, ... (lowercase names)
    peer_identity: Identity  # verified from the client certificate
    peer_address: SocketAddress  # TCP peer of the TLS connection (the source for policy)
    local_address: SocketAddress  # where the TLS connection arrived
    stream_id: int

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """Answer with a non-2xx status (400, 401, 503, ...)."""

    status: int
    headers: Headers = ()

    def __post_init__(self) -> None:
        if not 300 <= self.status <= 599:
            raise InvalidInput(f"a rejection needs a 3xx-5xx status, not {self.status}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Answer 200 and relay the tunnel to ``upstream``, an already-connected socket (owned by
    the server from now on). ``on_done`` hears how the relay ended."""

    upstream: socket.socket
    headers: Headers = ()
    on_done: Callable[[RelayResult], None] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminate:
    """Answer 200 and run ``protocol_factory()`` over the tunnel (its transport is the
    TunnelStream), e.g. an HTTP server in a waypoint."""

    protocol_factory: Callable[[], asyncio.BaseProtocol]
    headers: Headers = ()


Decision = Reject | Forward | Terminate
Handler = Callable[[InboundRequest], Awaitable[Decision]]
ContextSource = (
    ssl.SSLContext | Callable[[SocketAddress], ssl.SSLContext | Awaitable[ssl.SSLContext]]
)


class HboneServer:
    """Serves HBONE on listening sockets; ``serve`` until cancelled, or ``stop_accepting`` and
    ``drain``."""

    def __init__(
        self,
        *,
        handler: Handler,
        tls: ContextSource,
        trust_domain: str,
        config: HboneConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._handler = handler
        self._tls = tls
        self._trust_domain = trust_domain
        self.config = config or HboneConfig()
        self.clock = clock or SystemClock()
        self.connections: set[HboneConnection] = set()
        self.handshake_failures = 0
        self._accepting: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def serve(self, sock: socket.socket) -> None:
        """Accept on ``sock`` (listening) and serve every client; the server closes ``sock``
        once it stops accepting. Runs until cancelled, which cuts every connection, or until
        it stopped accepting and its connections are gone (``drain`` ends them)."""
        if self._stopped:
            sock.close()
            return
        sock.setblocking(False)
        async with asyncio.TaskGroup() as group:
            accepting = group.create_task(self._accept_loop(sock, group))
            self._accepting.add(accepting)
            accepting.add_done_callback(self._accepting.discard)

    async def stop_accepting(self) -> None:
        """Close the listeners, now and for good; returns once they are closed. Connections
        already accepted are served on (new streams included) until ``drain``."""
        self._stopped = True
        accepting = list(self._accepting)
        for task in accepting:
            task.cancel()
        if accepting:
            await asyncio.wait(accepting)

    async def drain(self, grace: float | None = None) -> None:
        """Stop accepting, GOAWAY every connection, wait for open streams up to ``grace``
        seconds (the configured drain timeout by default), then close what is left."""
        await self.stop_accepting()
        grace = self.config.drain_timeout if grace is None else grace
        async with asyncio.TaskGroup() as group:
            for connection in list(self.connections):
                group.create_task(connection.drain(grace))

    # ------------------------------------------------------------------ connections

    async def _accept_loop(self, sock: socket.socket, group: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    client, _ = await loop.sock_accept(sock)
                except OSError as error:  # EMFILE and friends: keep serving the open connections
                    log.warning("HBONE accept failed: %s", error)
                    await self.clock.sleep(0.1)
                    continue
                group.create_task(self._serve_connection(client))
        finally:
            # Closed here, once no accept is pending on it: the event loop must stop watching
            # a socket before it is closed (its descriptor may be reused at once).
            sock.close()

    async def _serve_connection(self, sock: socket.socket) -> None:
        async with asyncio.TaskGroup() as group:
            try:
                connection = await self._handshake(sock, group)
            except (MeshError, OSError, TimeoutError) as error:
                self.handshake_failures += 1
                log.info("refused HBONE client: %s", error)
                return
            self.connections.add(connection)
            try:
                connection.maintenance = group.create_task(connection.maintain())
                await connection.wait_closed()
            finally:
                self.connections.discard(connection)
                # However this task ends (cancelled with the server, mostly), the connection
                # ends with it: a stream arriving later would find no TaskGroup for its handler.
                connection.abort()

    async def _handshake(self, sock: socket.socket, group: asyncio.TaskGroup) -> HboneConnection:
        loop = asyncio.get_running_loop()
        set_nodelay(sock)
        transport: asyncio.BaseTransport | None = None
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                context = await self._context_for(sock.getsockname()[:2])

                made: list[HboneConnection] = []

                def factory() -> HboneConnection:
                    connection = HboneConnection(
                        role=Role.SERVER, config=self.config, clock=self.clock
                    )
                    connection._on_request = lambda stream, event: group.create_task(
                        self._handle(connection, stream, event)
                    )
                    made.append(connection)
                    return connection

                try:
                    # uvloop returns its TLS wrapper as the protocol: keep ours from the factory.
                    transport, _ = await loop.connect_accepted_socket(
                        factory,
                        sock,
                        ssl=context,
                        ssl_handshake_timeout=self.config.handshake_timeout,
                    )
                except ssl.SSLError as error:
                    raise TlsFailed(f"TLS handshake failed: {error.reason or error}") from None
                connection = made[0]
                self._verify(transport, connection)
                if not await connection.ready:
                    raise TlsFailed("client closed the connection before its HTTP/2 SETTINGS")
        except BaseException:
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]
            else:
                sock.close()
            raise
        return connection

    def _verify(self, transport: asyncio.BaseTransport, connection: HboneConnection) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != ALPN_H2:
            raise TlsFailed("client did not negotiate ALPN h2")
        identity = verify_client_identity(ssl_object, self._trust_domain)
        connection.peer_identity = identity
        connection.extra = {
            "peer_identity": identity,
            "peername": transport.get_extra_info("peername"),
            "sockname": transport.get_extra_info("sockname"),
            "ssl_object": ssl_object,
        }
        connection.verified.set_result(True)
        connection.unmute()

    async def _context_for(self, local: SocketAddress) -> ssl.SSLContext:
        if isinstance(self._tls, ssl.SSLContext):
            return self._tls
        result = self._tls(local)
        context = await result if inspect.isawaitable(result) else result
        if not isinstance(context, ssl.SSLContext):
            raise IdentityError(f"no TLS context for local address {local}")
        return context

    # ------------------------------------------------------------------ streams

    async def _handle(
        self, connection: HboneConnection, stream: TunnelStream, event: RequestReceived
    ) -> None:
        if not await connection.verified:
            stream.reset(ErrorCode.REFUSED_STREAM)
            return
        assert connection.peer_identity is not None
        peer = connection.extra["peername"]
        local = connection.extra["sockname"]
        request = InboundRequest(
            authority=event.authority,
            headers=event.headers,
            peer_identity=connection.peer_identity,
            peer_address=(peer[0], peer[1]),
            local_address=(local[0], local[1]),
            stream_id=event.stream_id,
        )
        try:
            decision = await self._handler(request)
        except Exception:
            # A handler bug fails this stream only; the connection keeps serving the others.
            log.exception("HBONE handler failed for %s", request.authority)
            decision = Reject(status=503)
        await self._execute(stream, decision)

    async def _execute(self, stream: TunnelStream, decision: Decision) -> None:
        if isinstance(decision, Reject):
            self._answer(stream, decision.status, decision.headers)
        elif isinstance(decision, Terminate):
            if self._answer(stream, 200, decision.headers):
                stream.attach(decision.protocol_factory())
        else:
            await self._forward(stream, decision)

    def _answer(self, stream: TunnelStream, status: int, headers: Headers) -> bool:
        try:
            stream.respond(status, headers)
        except MeshError as error:
            log.info("could not answer HBONE stream %d: %s", stream.stream_id, error)
            return False
        return True

    async def _forward(self, stream: TunnelStream, decision: Forward) -> None:
        relay = Relay(clock=self.clock)
        relay.status = 200
        if not self._answer(stream, 200, decision.headers):
            decision.upstream.close()
            result = relay.result()
            result = RelayResult(
                bytes_received=0,
                bytes_sent=0,
                duration=result.duration,
                reason=CloseReason.DOWNSTREAM_RESET,
            )
        else:
            stream.attach(relay.downstream)
            try:
                await asyncio.get_running_loop().connect_accepted_socket(
                    lambda: relay.upstream, decision.upstream
                )
            except OSError as error:
                log.info("upstream socket unusable: %s", error)
                decision.upstream.close()
                relay.upstream.connection_lost(error)  # resets the tunnel and ends the relay
            result = await relay.wait()
        if decision.on_done is not None:
            decision.on_done(result)
