"""The asyncio API client, for the runtime and controllers, and its open watches."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from ambientmesh.apiserver import wire
from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.paths import APPLY_PATH, collection_path
from ambientmesh.errors import MeshError
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import ApplyResult, ObjectList, WatchEvent


class AsyncApiClient:
    """Asyncio client for the runtime and controllers; the same methods as ``ApiClient``."""

    def __init__(self, address: ServerAddress, *, timeout: float = wire.DEFAULT_TIMEOUT) -> None:
        self.address = address
        transport = httpx.AsyncHTTPTransport(uds=str(address.socket)) if address.socket else None
        self._http = httpx.AsyncClient(transport=transport, **wire.http_options(address, timeout))

    @classmethod
    def for_cluster(cls, name: str = "default") -> AsyncApiClient:
        return cls(ServerAddress.for_cluster(name))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        wire.check_socket(self.address)
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise wire.unreachable(self.address, error) from error
        return wire.decode(response.status_code, response.content)

    async def get(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", wire.object_url(kind, name, namespace))
        return result

    async def list(
        self,
        kind: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        params = wire.selectors(label_selector, field_selector)
        body = await self.request("GET", collection_path(kind, None, namespace), params=params)
        return wire.object_list(body)

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", wire.create_url(obj), json=obj)
        return result

    async def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", wire.url_of(obj), json=obj)
        return result

    async def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", wire.url_of(obj, status=True), json=obj)
        return result

    async def delete(
        self, kind: KindInfo, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "DELETE", wire.object_url(kind, name, namespace)
        )
        return result

    async def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> builtins.list[ApplyResult]:
        body = await self.request("POST", APPLY_PATH, json={"items": list(objs), "dryRun": dry_run})
        return wire.apply_results(body)

    def watch(
        self,
        kind: KindInfo,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
    ) -> AsyncWatch:
        """As ``ApiClient.watch``. Use ``async with client.watch(...) as events`` so the
        connection closes when you stop early; plain ``async for`` closes it at the end."""
        params = wire.watch_params(
            resource_version, label_selector, field_selector, timeout_seconds
        )
        return AsyncWatch(self, collection_path(kind, None, namespace), params, bookmarks)


class AsyncWatch:
    """An open watch: an async iterator of ``WatchEvent`` and an async context manager."""

    def __init__(
        self, client: AsyncApiClient, url: str, params: dict[str, str], bookmarks: bool
    ) -> None:
        self._client = client
        self._url = url
        self._params = params
        self._bookmarks = bookmarks
        self._stack = contextlib.AsyncExitStack()
        self._lines: AsyncIterator[str] | None = None
        self._done = False

    async def __aenter__(self) -> AsyncWatch:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        if self._lines is None:
            await self._open()
        assert self._lines is not None
        try:
            while True:
                try:
                    line = await anext(self._lines)
                except StopAsyncIteration:
                    await self.aclose()
                    raise
                event = wire.watch_event(line)
                if event is not None and (self._bookmarks or event.type != "BOOKMARK"):
                    return event
        except httpx.TransportError as error:
            await self.aclose()
            raise wire.broken(self._client.address, error) from error
        except MeshError:
            await self.aclose()
            raise

    async def _open(self) -> None:
        if self._done:
            raise StopAsyncIteration
        http = self._client._http
        wire.check_socket(self._client.address)
        try:
            response = await self._stack.enter_async_context(
                http.stream("GET", self._url, params=self._params)
            )
        except httpx.TransportError as error:
            await self.aclose()
            raise wire.unreachable(self._client.address, error) from error
        if response.status_code != 200:
            content = await response.aread()
            await self.aclose()
            wire.decode(response.status_code, content)
        self._lines = response.aiter_lines()

    async def aclose(self) -> None:
        self._done = True
        await self._stack.aclose()
