"""Every ztunnel integration test runs on uvloop, the event loop the proxies run on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import uvloop

from tests.integration.ztunnel.harness import Mesh, loopback_mesh


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    async with loopback_mesh() as made:
        yield made
