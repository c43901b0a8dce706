"""Fixtures: an API server on a real unix socket, run in a thread with its own event loop, so
both the blocking and the asyncio clients can talk to it from a test."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.apiserver.standalone import ServerOptions, run_server
from ambientmesh.clock import SystemClock
from ambientmesh.store.store import StoreConfig


@dataclass
class RunningServer:
    options: ServerOptions
    addresses: list[str]
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event
    thread: threading.Thread
    clients: list[ApiClient] = field(default_factory=list)

    @property
    def address(self) -> ServerAddress:
        return ServerAddress(socket=self.options.socket)

    def client(self) -> ApiClient:
        client = ApiClient(self.address, timeout=10.0)
        self.clients.append(client)
        return client

    def async_client(self) -> AsyncApiClient:
        return AsyncApiClient(self.address, timeout=10.0)

    def shutdown(self) -> None:
        for client in self.clients:
            client.close()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)
        assert not self.thread.is_alive(), "the API server did not stop"


@contextmanager
def serve(options: ServerOptions) -> Iterator[RunningServer]:
    """Run the server in a thread until the block ends."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()

        def on_ready(addresses: list[str]) -> None:
            box["addresses"] = addresses
            ready.set()

        await run_server(options, clock=SystemClock(), stop=box["stop"], on_ready=on_ready)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # reported to the test below
            box["error"] = error
            ready.set()

    thread = threading.Thread(target=run, name="apiserver", daemon=True)
    thread.start()
    if not ready.wait(15) or "error" in box:
        raise RuntimeError(f"the API server did not start: {box.get('error')!r}")
    server = RunningServer(options, box["addresses"], box["loop"], box["stop"], thread)
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="am-api-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def options_for(directory: Path, **overrides: Any) -> ServerOptions:
    settings: dict[str, Any] = {
        "state_dir": directory / "state",
        "socket": directory / "api.sock",
        "bookmark_interval": 0.2,
    }
    settings.update(overrides)
    return ServerOptions(**settings)


@pytest.fixture
def server(short_dir: Path) -> Iterator[RunningServer]:
    with serve(options_for(short_dir)) as running:
        yield running


@pytest.fixture
def small_history_server(short_dir: Path) -> Iterator[RunningServer]:
    with serve(options_for(short_dir, store=StoreConfig(event_retention=20))) as running:
        yield running
