"""The blocking API client, for the CLI; ``AsyncApiClient`` has the same methods for asyncio.

It speaks to a unix socket or to an ``https://`` URL with a client certificate, and turns
error responses into the matching ``MeshError``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from ambientmesh.apiserver import wire
from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.paths import APPLY_PATH, collection_path
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import ApplyResult, ObjectList, WatchEvent


class ApiClient:
    """Blocking client for the CLI. Use as a context manager or call ``close()``."""

    def __init__(self, address: ServerAddress, *, timeout: float = wire.DEFAULT_TIMEOUT) -> None:
        self.address = address
        transport = httpx.HTTPTransport(uds=str(address.socket)) if address.socket else None
        self._http = httpx.Client(transport=transport, **wire.http_options(address, timeout))

    @classmethod
    def for_cluster(cls, name: str = "default") -> ApiClient:
        return cls(ServerAddress.for_cluster(name))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        """Send one request and decode the JSON answer (for extension endpoints too)."""
        wire.check_socket(self.address)
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise wire.unreachable(self.address, error) from error
        return wire.decode(response.status_code, response.content)

    def get(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", wire.object_url(kind, name, namespace))
        return result

    def list(
        self,
        kind: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """Objects of ``kind`` in ``namespace``, or in every namespace when it is None."""
        params = wire.selectors(label_selector, field_selector)
        body = self.request("GET", collection_path(kind, None, namespace), params=params)
        return wire.object_list(body)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", wire.create_url(obj), json=obj)
        return result

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", wire.url_of(obj), json=obj)
        return result

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", wire.url_of(obj, status=True), json=obj)
        return result

    def delete(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", wire.object_url(kind, name, namespace))
        return result

    def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> builtins.list[ApplyResult]:
        body = self.request("POST", APPLY_PATH, json={"items": list(objs), "dryRun": dry_run})
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
    ) -> Iterator[WatchEvent]:
        """Changes after ``resource_version`` (or the current objects as ADDED, then changes).
        Ends when the server ends the watch; ``Gone`` if that history is no longer kept."""
        params = wire.watch_params(
            resource_version, label_selector, field_selector, timeout_seconds
        )
        url = collection_path(kind, None, namespace)
        wire.check_socket(self.address)
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.status_code != 200:
                    wire.decode(response.status_code, response.read())
                for line in response.iter_lines():
                    event = wire.watch_event(line)
                    if event is not None and (bookmarks or event.type != "BOOKMARK"):
                        yield event
        except httpx.ConnectError as error:
            raise wire.unreachable(self.address, error) from error
        except httpx.TransportError as error:
            raise wire.broken(self.address, error) from error
