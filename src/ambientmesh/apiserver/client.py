"""Clients of the API server: ``ApiClient`` (sync, for the CLI) and ``AsyncApiClient``.

Both speak to a unix socket or to an ``https://`` URL with a client certificate, have the
same methods, and turn error responses into the matching ``MeshError``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ambientmesh.apiserver.paths import APPLY_PATH, collection_path
from ambientmesh.apiserver.status import error_from_status
from ambientmesh.errors import InvalidInput, MeshError, RemoteProtocolError, Unavailable
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import ApplyResult, ObjectList, WatchEvent

RUN_DIR = Path("/run/ambientmesh")
# Reads wait longer than a server's bookmark interval (10 s) times three before a watch is
# declared dead; plain requests get the same budget, enough for a queued group commit.
DEFAULT_TIMEOUT = 35.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerAddress:
    """Where the API server is: a unix socket, or an https URL with client credentials."""

    socket: Path | None = None
    url: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    ca: Path | None = None

    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else str(self.url)

    @classmethod
    def for_cluster(
        cls, name: str = "default", env: Mapping[str, str] | None = None
    ) -> ServerAddress:
        """``/run/ambientmesh/<name>/api.sock`` (the root moved by ``AMBIENTMESH_RUN_ROOT``,
        as ``ambientmesh up`` allows) unless ``AMBIENTMESH_SERVER`` names another
        socket (a path or ``unix://`` URL) or an ``https://`` URL (with
        ``AMBIENTMESH_CLIENT_CERT``/``_KEY``/``_CA`` for mTLS)."""
        env = os.environ if env is None else env
        server = env.get("AMBIENTMESH_SERVER", "").strip()
        if not server:
            run_root = Path(env.get("AMBIENTMESH_RUN_ROOT") or RUN_DIR)
            return cls(socket=run_root / name / "api.sock")
        if server.startswith("unix://"):
            return cls(socket=Path(server.removeprefix("unix://")))
        if server.startswith("/"):
            return cls(socket=Path(server))
        if server.startswith("https://"):
            return cls(
                url=server.rstrip("/"),
                client_cert=_path(env.get("AMBIENTMESH_CLIENT_CERT")),
                client_key=_path(env.get("AMBIENTMESH_CLIENT_KEY")),
                ca=_path(env.get("AMBIENTMESH_CLIENT_CA")),
            )
        raise InvalidInput(
            f"AMBIENTMESH_SERVER={server!r} is neither a socket path nor an https:// URL "
            "(plain http is not served)"
        )

    def tls_context(self) -> ssl.SSLContext:
        if self.client_cert is None or self.client_key is None:
            raise InvalidInput(
                f"the API server at {self.url} requires a client certificate; set "
                "AMBIENTMESH_CLIENT_CERT and AMBIENTMESH_CLIENT_KEY (and AMBIENTMESH_CLIENT_CA)"
            )
        try:
            context = ssl.create_default_context(cafile=self.ca)
            context.load_cert_chain(self.client_cert, self.client_key)
        except (OSError, ssl.SSLError) as error:
            raise InvalidInput(f"cannot load the client certificate or CA: {error}") from error
        return context


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


# ---------------------------------------------------------------- requests and answers
def _namespace(kind: KindInfo, namespace: str | None) -> str | None:
    return (namespace or "default") if kind.namespaced else None


def _object_url(
    kind: KindInfo, name: str, namespace: str | None, version: str | None = None
) -> str:
    return f"{collection_path(kind, version, _namespace(kind, namespace))}/{name}"


def _url_of(obj: Mapping[str, Any], *, status: bool = False) -> str:
    """The URL of ``obj`` at the version it is written in."""
    api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind_name, str):
        raise InvalidInput("the object needs apiVersion and kind")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        raise InvalidInput(f"the {kind_name} needs metadata.name")
    kind = kinds.lookup(api_version, kind_name)
    version = kinds.split_api_version(api_version)[1]
    url = _object_url(kind, str(metadata["name"]), metadata.get("namespace"), version)
    return f"{url}/status" if status else url


def _create_url(obj: Mapping[str, Any]) -> str:
    api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind_name, str):
        raise InvalidInput("the object needs apiVersion and kind")
    kind = kinds.lookup(api_version, kind_name)
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    version = kinds.split_api_version(api_version)[1]
    return collection_path(kind, version, _namespace(kind, namespace))


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _watch_params(
    resource_version: str | None,
    label_selector: str | None,
    field_selector: str | None,
    timeout_seconds: int | None,
) -> dict[str, str]:
    params = {"watch": "true", "allowWatchBookmarks": "true"}
    params.update(_selectors(label_selector, field_selector))
    if resource_version:
        params["resourceVersion"] = resource_version
    if timeout_seconds:
        params["timeoutSeconds"] = str(timeout_seconds)
    return params


def _decode(status: int, content: bytes) -> Any:
    try:
        body = json.loads(content) if content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = content.decode(errors="replace")
    if status >= 400:
        raise error_from_status(status, body)
    return body


def _object_list(body: Any) -> ObjectList:
    return ObjectList(
        items=list(body.get("items") or []),
        resource_version=str(body.get("metadata", {}).get("resourceVersion", "")),
    )


def _apply_results(body: Any) -> list[ApplyResult]:
    return [
        ApplyResult(
            kind=item["kind"],
            namespace=item.get("namespace"),
            name=item["name"],
            action=item["action"],
        )
        for item in body.get("items", [])
    ]


def _watch_event(line: str) -> WatchEvent | None:
    """One line of a watch stream; None for a keep-alive; errors raise."""
    if not line.strip():
        return None
    try:
        raw = json.loads(line)
        event = WatchEvent(type=str(raw["type"]), object=dict(raw["object"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RemoteProtocolError(f"malformed watch event from the API server: {error}") from None
    if event.type == "ERROR":
        raise error_from_status(int(event.object.get("code") or 500), event.object)
    return event


def _unreachable(address: ServerAddress, error: Exception) -> Unavailable:
    reason = str(error) or type(error).__name__
    return Unavailable(
        f"cannot reach the API server at {address.describe()}: {reason}; "
        "is the cluster running? (ambientmesh up)"
    )


def _check_socket(address: ServerAddress) -> None:
    """Fail fast, with the usual message, when the socket file is not there at all (this
    also spares httpcore's sync backend, which leaks the socket of a failed unix connect)."""
    if address.socket is not None and not address.socket.exists():
        raise _unreachable(address, FileNotFoundError("no such socket"))


def _broken(address: ServerAddress, error: Exception) -> Unavailable:
    reason = str(error) or type(error).__name__
    return Unavailable(f"the connection to the API server at {address.describe()} broke: {reason}")


def _http_options(address: ServerAddress, timeout: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    if address.socket is not None:
        return {"base_url": "http://apiserver", "timeout": timeout, "limits": limits}
    return {
        "base_url": address.url,
        "verify": address.tls_context(),
        "timeout": timeout,
        "limits": limits,
    }


# ---------------------------------------------------------------- sync
class ApiClient:
    """Blocking client for the CLI. Use as a context manager or call ``close()``."""

    def __init__(self, address: ServerAddress, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        transport = httpx.HTTPTransport(uds=str(address.socket)) if address.socket else None
        self._http = httpx.Client(transport=transport, **_http_options(address, timeout))

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
        _check_socket(self.address)
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise _unreachable(self.address, error) from error
        return _decode(response.status_code, response.content)

    def get(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", _object_url(kind, name, namespace))
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
        params = _selectors(label_selector, field_selector)
        body = self.request("GET", collection_path(kind, None, namespace), params=params)
        return _object_list(body)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", _create_url(obj), json=obj)
        return result

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", _url_of(obj), json=obj)
        return result

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", _url_of(obj, status=True), json=obj)
        return result

    def delete(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", _object_url(kind, name, namespace))
        return result

    def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> builtins.list[ApplyResult]:
        body = self.request("POST", APPLY_PATH, json={"items": list(objs), "dryRun": dry_run})
        return _apply_results(body)

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
        params = _watch_params(resource_version, label_selector, field_selector, timeout_seconds)
        url = collection_path(kind, None, namespace)
        _check_socket(self.address)
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.status_code != 200:
                    _decode(response.status_code, response.read())
                for line in response.iter_lines():
                    event = _watch_event(line)
                    if event is not None and (bookmarks or event.type != "BOOKMARK"):
                        yield event
        except httpx.ConnectError as error:
            raise _unreachable(self.address, error) from error
        except httpx.TransportError as error:
            raise _broken(self.address, error) from error


# ---------------------------------------------------------------- async
class AsyncApiClient:
    """Asyncio client for the runtime and controllers; the same methods as ``ApiClient``."""

    def __init__(self, address: ServerAddress, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        transport = httpx.AsyncHTTPTransport(uds=str(address.socket)) if address.socket else None
        self._http = httpx.AsyncClient(transport=transport, **_http_options(address, timeout))

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
        _check_socket(self.address)
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.TransportError as error:
            raise _unreachable(self.address, error) from error
        return _decode(response.status_code, response.content)

    async def get(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", _object_url(kind, name, namespace))
        return result

    async def list(
        self,
        kind: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        params = _selectors(label_selector, field_selector)
        body = await self.request("GET", collection_path(kind, None, namespace), params=params)
        return _object_list(body)

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", _create_url(obj), json=obj)
        return result

    async def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", _url_of(obj), json=obj)
        return result

    async def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("PUT", _url_of(obj, status=True), json=obj)
        return result

    async def delete(
        self, kind: KindInfo, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("DELETE", _object_url(kind, name, namespace))
        return result

    async def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> builtins.list[ApplyResult]:
        body = await self.request("POST", APPLY_PATH, json={"items": list(objs), "dryRun": dry_run})
        return _apply_results(body)

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
        params = _watch_params(resource_version, label_selector, field_selector, timeout_seconds)
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
                event = _watch_event(line)
                if event is not None and (self._bookmarks or event.type != "BOOKMARK"):
                    return event
        except httpx.TransportError as error:
            await self.aclose()
            raise _broken(self._client.address, error) from error
        except MeshError:
            await self.aclose()
            raise

    async def _open(self) -> None:
        if self._done:
            raise StopAsyncIteration
        http = self._client._http
        _check_socket(self._client.address)
        try:
            response = await self._stack.enter_async_context(
                http.stream("GET", self._url, params=self._params)
            )
        except httpx.TransportError as error:
            await self.aclose()
            raise _unreachable(self._client.address, error) from error
        if response.status_code != 200:
            content = await response.aread()
            await self.aclose()
            _decode(response.status_code, content)
        self._lines = response.aiter_lines()

    async def aclose(self) -> None:
        self._done = True
        await self._stack.aclose()
