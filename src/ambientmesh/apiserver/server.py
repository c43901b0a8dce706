"""The API server: Kubernetes-style paths and JSON bodies over the store.

``/api/v1/...`` serves the core group and ``/apis/<group>/<version>/...`` the others; errors
are Kubernetes ``Status`` objects. Watches stream newline-delimited JSON events and send a
BOOKMARK (or, if the client did not ask for bookmarks, a bare newline) every
``bookmark_interval`` seconds, so both sides notice a dead connection.

Watch semantics, as Kubernetes': ``resourceVersion=N`` delivers every change after N (410
Expired if that history was compacted); no resourceVersion (or "0") first delivers the
current objects as synthetic ADDED events, then every later change. With selectors, an object
that starts matching arrives as ADDED and one that stops matching leaves as DELETED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

from ambientmesh import __version__
from ambientmesh.apiserver import discovery
from ambientmesh.apiserver.listeners import Listener
from ambientmesh.apiserver.paths import APPLY_PATH, ResourcePath, parse_resource_path
from ambientmesh.apiserver.status import failure, status_for, success
from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput, MeshError
from ambientmesh.resources.kinds import ALL_KINDS
from ambientmesh.store.aio import AsyncStore, Watch
from ambientmesh.store.filters import make_filter
from ambientmesh.store.types import EventType

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What a failed request was about, for the ``details`` of its Status.
DETAILS = web.RequestKey("details", dict[str, str])


class MethodNotAllowed(InvalidInput):
    status = 405
    reason = "MethodNotAllowed"


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json(value: object, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(value), status=status, content_type="application/json")


class ApiServer:
    """Serves one ``AsyncStore``. ``extra_routes`` (e.g. the CA status endpoint) are matched
    before the resource routes."""

    def __init__(
        self,
        store: AsyncStore,
        *,
        clock: Clock,
        extra_routes: Iterable[web.AbstractRouteDef] = (),
        bookmark_interval: float = 10.0,
        max_body_bytes: int = 64 << 20,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self._stop = asyncio.Event()
        self.app = web.Application(client_max_size=max_body_bytes, middlewares=[_errors])
        self.app.add_routes(list(extra_routes))
        router = self.app.router
        router.add_get("/version", self._version)
        for probe in ("/healthz", "/readyz", "/livez"):
            router.add_get(probe, self._health)
        router.add_get("/api", self._discover_core)
        router.add_get("/apis", self._discover_groups)
        router.add_post(APPLY_PATH, self._apply)
        router.add_route("*", "/api/{tail:.*}", self._resource)
        router.add_route("*", "/apis/{tail:.*}", self._resource)

    # ------------------------------------------------------------ lifecycle
    async def serve(
        self,
        listeners: Sequence[Listener],
        *,
        on_ready: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Serve on the given listening sockets until ``stop()``; then end watches and close."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        try:
            for listener in listeners:
                site = web.SockSite(runner, listener.sock, ssl_context=listener.tls)
                await site.start()
            if on_ready is not None:
                on_ready([listener.address for listener in listeners])
            await self._stop.wait()
        finally:
            self.store.hub.close()  # watches end now rather than at the shutdown timeout
            await runner.cleanup()
            for listener in listeners:
                listener.close()
                if listener.path is not None:
                    with contextlib.suppress(OSError):
                        if listener.path.stat().st_ino == listener.inode:  # not a successor's
                            listener.path.unlink()

    def stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------ plain endpoints
    async def _version(self, request: web.Request) -> web.Response:
        major, minor, *_ = __version__.split(".")
        return _json(
            {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{__version__}",
                "platform": "linux",
                "ambientmesh": __version__,
            }
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _discover_core(self, request: web.Request) -> web.Response:
        return _json(discovery.core_versions())

    async def _discover_groups(self, request: web.Request) -> web.Response:
        return _json(discovery.group_list(ALL_KINDS))

    async def _apply(self, request: web.Request) -> web.Response:
        body = await _read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise InvalidInput('the apply body must be {"items": [<objects>...], "dryRun": <bool>}')
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise InvalidInput(f"dryRun must be true or false, not {dry_run!r}")
        results = await self.store.apply(body["items"], dry_run=dry_run)
        return _json(
            {
                "apiVersion": "ambientmesh.io/v1",
                "kind": "ApplyResult",
                "dryRun": dry_run,
                "items": [
                    {
                        "kind": result.kind,
                        "namespace": result.namespace,
                        "name": result.name,
                        "action": result.action,
                    }
                    for result in results
                ],
            }
        )

    # ------------------------------------------------------------ resources
    async def _resource(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s]
        if request.method == "GET" and _is_discovery(segments):
            return _json(_discovery_for(segments))
        target = parse_resource_path(request.path)
        details = {"group": target.kind.group, "kind": target.kind.plural}
        if target.name is not None:
            details["name"] = target.name
        request[DETAILS] = details
        method = request.method
        if target.name is None and method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, target)
            return await self._list(request, target)
        if target.name is None and method == "POST":
            return await self._create(request, target)
        if target.name is not None and method == "GET":
            return await self._get(target)
        if target.name is not None and method == "PUT":
            return await self._update(request, target)
        if target.name is not None and target.subresource is None and method == "DELETE":
            return await self._delete(target)
        raise MethodNotAllowed(f"{method} is not supported on {request.path}")

    async def _get(self, target: ResourcePath) -> web.Response:
        assert target.name is not None
        obj = await self.store.read(
            self.store.store.get, target.kind, target.name, target.namespace
        )
        return _json(_in_version(obj, target))

    async def _create(self, request: web.Request, target: ResourcePath) -> web.Response:
        if target.kind.namespaced and target.namespace is None:
            raise MethodNotAllowed(
                f"{target.kind.qualified_plural} are namespaced; create them under "
                f"/namespaces/<namespace>/{target.kind.plural}"
            )
        obj = _object_for(target, await _read_json(request))
        created = await self.store.create(obj)
        return _json(_in_version(created, target), status=201)

    async def _update(self, request: web.Request, target: ResourcePath) -> web.Response:
        obj = _object_for(target, await _read_json(request))
        if target.subresource == "status":
            updated = await self.store.update_status(obj)
        else:
            updated = await self.store.update(obj)
        return _json(_in_version(updated, target))

    async def _delete(self, target: ResourcePath) -> web.Response:
        assert target.name is not None
        deleted = await self.store.delete(target.kind, target.name, target.namespace)
        return _json(_in_version(deleted, target))

    async def _list(self, request: web.Request, target: ResourcePath) -> web.Response:
        flt = make_filter(
            target.kind,
            target.namespace,
            label_selector=request.query.get("labelSelector"),
            field_selector=request.query.get("fieldSelector"),
        )
        snap = await self.store.snapshot(flt)
        docs = snap.docs
        if target.version != target.kind.preferred_version:
            docs = [_dumps(_in_version(json.loads(doc), target)).decode() for doc in docs]
        head = _dumps(
            {
                "apiVersion": target.api_version,
                "kind": f"{target.kind.kind}List",
                "metadata": {"resourceVersion": str(snap.resource_version)},
            }
        )
        body = head[:-1] + b',"items":[' + ",".join(docs).encode() + b"]}"
        return web.Response(body=body, content_type="application/json")

    # ------------------------------------------------------------ watch
    async def _watch(self, request: web.Request, target: ResourcePath) -> web.StreamResponse:
        query = request.query
        flt = make_filter(
            target.kind,
            target.namespace,
            label_selector=query.get("labelSelector"),
            field_selector=query.get("fieldSelector"),
        )
        since = _resource_version(query.get("resourceVersion"))
        timeout = _timeout_seconds(query.get("timeoutSeconds"))
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        if since is not None:
            # Answer 410 before the stream starts when the history is already gone.
            await self.store.read(
                lambda: self.store.store.events_after(
                    since, group=target.kind.group, kind=target.kind.kind, limit=0
                )
            )
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        response.enable_chunked_encoding()
        async with self.store.watch(flt, since) as watch:
            await response.prepare(request)
            async with asyncio.TaskGroup() as tasks:
                ticker = tasks.create_task(self._tick(watch, timeout))
                try:
                    await self._stream(response, target, watch, bookmarks=bookmarks)
                finally:
                    ticker.cancel()
        return response

    async def _stream(
        self, response: web.StreamResponse, target: ResourcePath, watch: Watch, *, bookmarks: bool
    ) -> None:
        """Write events until the watch ends; a failure after the headers went out can only
        be reported in the stream, as an ERROR event carrying a Status."""
        try:
            await _send(response, target, await watch.initial())
            while (items := await watch.next()) is not None:
                if items:
                    await _send(response, target, items)
                elif bookmarks:
                    await response.write(_bookmark(target, watch.progress))
                else:
                    await response.write(b"\n")
        except ConnectionError:
            return  # the client went away
        except MeshError as error:
            with contextlib.suppress(ConnectionError):
                await response.write(_dumps({"type": "ERROR", "object": status_for(error)}) + b"\n")

    async def _tick(self, watch: Watch, lifetime: float | None) -> None:
        """Ask for a BOOKMARK every interval; end the watch after ``timeoutSeconds``."""
        left = lifetime
        while left is None or left > 0:
            step = self.bookmark_interval if left is None else min(self.bookmark_interval, left)
            await self.clock.sleep(step)
            if left is not None:
                left -= step
                if left <= 0:
                    break
            watch.tick()
        watch.stop()


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Status object with the matching HTTP code."""
    try:
        return await handler(request)
    except MeshError as error:
        if error.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, error.message)
        return _json(status_for(error, request.get(DETAILS)), status=error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = error.text or error.reason
        if error.status == 404:
            message = f"the server could not find the requested resource: {request.path}"
        return _json(failure(error.status, None, message), status=error.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _json(failure(500, "InternalError", "internal error; see the server log"), 500)


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidInput("the request has no body; send the object as JSON")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InvalidInput(f"the request body is not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"the request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}"
        ) from None


def _object_for(target: ResourcePath, body: object) -> dict[str, Any]:
    """Check a request body against the URL it was sent to; fill what the URL implies."""
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, not {_json_type(body)}")
    body.setdefault("apiVersion", target.api_version)
    body.setdefault("kind", target.kind.kind)
    if body["kind"] != target.kind.kind:
        raise InvalidInput(
            f"the object is a {body['kind']!r} but {target.kind.qualified_plural} takes "
            f'"{target.kind.kind}"'
        )
    if body["apiVersion"] != target.api_version:
        raise InvalidInput(
            f"the API version in the data ({body['apiVersion']}) does not match the expected "
            f"API version ({target.api_version})"
        )
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidInput(f"metadata must be a JSON object, not {_json_type(metadata)}")
    if target.kind.namespaced and target.namespace is not None:
        namespace = metadata.setdefault("namespace", target.namespace) or target.namespace
        if namespace != target.namespace:
            raise InvalidInput(
                f"the namespace of the object ({namespace}) does not match the namespace on "
                f"the URL ({target.namespace})"
            )
        metadata["namespace"] = namespace
    if target.name is not None:
        name = metadata.setdefault("name", target.name)
        if name != target.name:
            raise InvalidInput(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})"
            )
    return body


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _in_version(obj: dict[str, Any], target: ResourcePath) -> dict[str, Any]:
    """Objects are stored at the preferred version; a read through another path says its own."""
    if target.version != target.kind.preferred_version:
        obj = {**obj, "apiVersion": target.api_version}
    return obj


async def _send(
    response: web.StreamResponse, target: ResourcePath, items: list[tuple[EventType, str]]
) -> None:
    if not items:
        return
    rewrite = target.version != target.kind.preferred_version
    lines = []
    for event_type, doc in items:
        text = _dumps(_in_version(json.loads(doc), target)).decode() if rewrite else doc
        lines.append(f'{{"type":"{event_type}","object":{text}}}\n')
    await response.write("".join(lines).encode())


def _bookmark(target: ResourcePath, resource_version: int) -> bytes:
    obj = {
        "kind": target.kind.kind,
        "apiVersion": target.api_version,
        "metadata": {"resourceVersion": str(resource_version)},
    }
    return _dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


def _resource_version(value: str | None) -> int | None:
    """``resourceVersion`` of a watch: unset or "0" start with the current objects."""
    if value in (None, "", "0"):
        return None
    if not value.isdigit():
        raise InvalidInput(f'resourceVersion must be a non-negative integer, not "{value}"')
    return int(value)


def _timeout_seconds(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) == 0:
        raise InvalidInput(f'timeoutSeconds must be a positive integer, not "{value}"')
    return float(value)


def _is_discovery(segments: list[str]) -> bool:
    return segments == ["api", "v1"] or (segments[:1] == ["apis"] and len(segments) in (2, 3))


def _discovery_for(segments: list[str]) -> dict[str, Any]:
    if segments == ["api", "v1"]:
        return discovery.resource_list(ALL_KINDS, "", "v1")
    if len(segments) == 2:
        return discovery.group(ALL_KINDS, segments[1])
    return discovery.resource_list(ALL_KINDS, segments[1], segments[2])


__all__ = ["APPLY_PATH", "ApiServer", "MethodNotAllowed", "success"]
