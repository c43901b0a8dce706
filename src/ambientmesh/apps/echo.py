"""Echo server for trying the mesh: HTTP/1.1, h2c, plain TCP echo and a server-first port.

    python -m ambientmesh.apps.echo [--http-port 8080] [--h2c-port 8081]
                                    [--tcp-port 9000] [--server-first-port 9001]

HTTP answers name the pod (POD_NAME, else the host name), the client address the server saw,
the method, path and request headers: plain text, or JSON with `?format=json` or
`Accept: application/json`; `?status=503` picks the status. The TCP port echoes bytes back;
the server-first port first sends `hello from <pod> to <client>` and then echoes. Ports also
come from ECHO_HTTP_PORT, ECHO_H2C_PORT, ECHO_TCP_PORT and ECHO_SERVER_FIRST_PORT (flags win).
Once listening it prints one line naming every port; SIGTERM or SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from ambientmesh.apps.echo_h2c import H2cEcho
from ambientmesh.apps.echo_reply import EchoRequest, reply

CHUNK = 64 * 1024
PORT_ENV = {
    "http": "ECHO_HTTP_PORT",
    "h2c": "ECHO_H2C_PORT",
    "tcp": "ECHO_TCP_PORT",
    "server_first": "ECHO_SERVER_FIRST_PORT",
}
DEFAULT_PORTS = {"http": 8080, "h2c": 8081, "tcp": 9000, "server_first": 9001}


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoConfig:
    pod: str
    host: str = "0.0.0.0"
    http_port: int = 8080
    h2c_port: int = 8081
    tcp_port: int = 9000
    server_first_port: int = 9001
    idle_timeout: float = 600.0  # seconds a TCP client may stay silent


class EchoServer:
    """All four listeners; `async with` starts and stops them. `ports` holds the bound ports."""

    def __init__(self, config: EchoConfig) -> None:
        self.config = config
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> EchoServer:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _start(self) -> None:
        config = self.config
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        http_socket = _listen(config.host, config.http_port)
        await web.SockSite(self._runner, http_socket).start()
        self.ports["http"] = http_socket.getsockname()[1]
        loop = asyncio.get_running_loop()
        h2c = await loop.create_server(
            lambda: H2cEcho(config.pod), sock=_listen(config.host, config.h2c_port)
        )
        tcp = await asyncio.start_server(self._echo, sock=_listen(config.host, config.tcp_port))
        first = await asyncio.start_server(
            self._server_first, sock=_listen(config.host, config.server_first_port)
        )
        for name, server in (("h2c", h2c), ("tcp", tcp), ("server_first", first)):
            self._servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]

    async def _http(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        body = await request.read()
        answer = reply(
            EchoRequest(
                pod=self.config.pod,
                client=f"{peer[0]}:{peer[1]}" if peer else "unknown",
                protocol=f"HTTP/{request.version.major}.{request.version.minor}",
                method=request.method,
                target=request.raw_path,
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers
                ],
                body_bytes=len(body),
            )
        )
        return web.Response(
            status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type}
        )

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._relay(reader, writer)

    async def _server_first(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        writer.write(f"hello from {self.config.pod} to {client}\n".encode())
        await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(self.config.idle_timeout):
                    data = await reader.read(CHUNK)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (TimeoutError, ConnectionError):
            pass  # idle too long, or the client broke off: just close
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def parse_args(argv: Sequence[str] | None = None) -> EchoConfig:
    parser = argparse.ArgumentParser(
        prog="python -m ambientmesh.apps.echo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--host", default=os.environ.get("ECHO_HOST", "0.0.0.0"), help="address to listen on"
    )
    for name, env in PORT_ENV.items():
        flag = "--" + name.replace("_", "-") + "-port"
        parser.add_argument(
            flag,
            dest=name,
            type=_port,
            default=None,
            help=f"(env {env}, default {DEFAULT_PORTS[name]})",
        )
    parser.add_argument(
        "--pod",
        default=os.environ.get("POD_NAME") or socket.gethostname(),
        help="name to answer with",
    )
    args = parser.parse_args(argv)
    ports = {}
    for name, env in PORT_ENV.items():
        value = getattr(args, name)
        if value is None:
            text = os.environ.get(env)
            try:
                value = _port(text) if text else DEFAULT_PORTS[name]
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{env}: {exc}")
        ports[name] = value
    return EchoConfig(
        pod=args.pod,
        host=args.host,
        http_port=ports["http"],
        h2c_port=ports["h2c"],
        tcp_port=ports["tcp"],
        server_first_port=ports["server_first"],
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number in 0..65535")
    return int(text)


async def serve(config: EchoConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EchoServer(config) as server:
        listening = " ".join(
            f"{name.replace('_', '-')}={config.host}:{port}" for name, port in server.ports.items()
        )
        print(f"echo: pod {config.pod} listening {listening}", flush=True)
        await stop.wait()
    print("echo: stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        import uvloop

        uvloop.run(serve(config))
    except OSError as exc:
        print(f"echo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
