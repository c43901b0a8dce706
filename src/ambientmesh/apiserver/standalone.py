"""The API server as a process of its own: store, group committer and listeners in one TaskGroup."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ambientmesh.apiserver.listeners import (
    Listener,
    TlsFiles,
    bind_tcp,
    bind_unix,
    server_tls_context,
)
from ambientmesh.apiserver.server import ApiServer
from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput
from ambientmesh.store.admission import DEFAULT_ADMISSION, Admission
from ambientmesh.store.aio import AsyncStore
from ambientmesh.store.store import Store, StoreConfig

STORE_FILE = "store.db"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    state_dir: Path
    socket: Path
    tcp: tuple[str, int] | None = None
    tls: TlsFiles | None = None
    ready_file: Path | None = None
    store: StoreConfig = field(default_factory=StoreConfig)
    bookmark_interval: float = 10.0
    max_body_bytes: int = 64 << 20
    admission: tuple[Admission, ...] = DEFAULT_ADMISSION
    extra_routes: tuple[web.AbstractRouteDef, ...] = ()


def open_listeners(options: ServerOptions) -> list[Listener]:
    """Bind every listener before serving, so a bad address or certificate fails start-up."""
    if options.tcp is not None and options.tls is None:
        raise InvalidInput("the TCP listener needs TLS files: it serves mTLS only")
    context = server_tls_context(options.tls) if options.tls is not None else None
    listeners = [bind_unix(options.socket)]
    try:
        if options.tcp is not None and context is not None:
            listeners.append(bind_tcp(*options.tcp, context))
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    return listeners


async def run_server(
    options: ServerOptions,
    *,
    clock: Clock,
    stop: asyncio.Event,
    on_ready: Callable[[list[str]], None] | None = None,
) -> None:
    """Serve until ``stop`` is set; then stop listening, commit what was queued and close."""
    options.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(
        options.state_dir / STORE_FILE,
        clock=clock,
        config=options.store,
        admission=options.admission,
    )
    async_store = AsyncStore(store)
    try:
        listeners = open_listeners(options)
        server = ApiServer(
            async_store,
            clock=clock,
            bookmark_interval=options.bookmark_interval,
            max_body_bytes=options.max_body_bytes,
            extra_routes=options.extra_routes,
        )

        def ready(addresses: list[str]) -> None:
            if options.ready_file is not None:
                write_ready_file(options.ready_file, addresses)
            if on_ready is not None:
                on_ready(addresses)

        async with asyncio.TaskGroup() as tasks:
            committer = tasks.create_task(async_store.run())
            serving = tasks.create_task(server.serve(listeners, on_ready=ready))
            await stop.wait()
            server.stop()
            await serving
            await async_store.close()
            await committer
    finally:
        async_store.shutdown()


def write_ready_file(path: Path, addresses: list[str]) -> None:
    """Atomically write ``{"pid": ..., "addresses": [...]}`` once the listeners accept."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), "addresses": addresses}) + "\n")
    os.replace(temporary, path)
