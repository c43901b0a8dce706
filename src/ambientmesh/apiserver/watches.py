"""Watch streams: newline-delimited events, bookmarks that prove the line alive, timeoutSeconds.

Kubernetes' semantics: ``resourceVersion=N`` delivers every change after N (410 Expired if
that history was compacted); no resourceVersion (or "0") first delivers the current objects as
synthetic ADDED events, then every later change. With selectors, an object that starts
matching arrives as ADDED and one that stops matching leaves as DELETED. Every
``bookmark_interval`` seconds the stream carries a BOOKMARK (or, if the client did not ask for
bookmarks, a bare newline), so both sides notice a dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from ambientmesh.apiserver.bodies import dumps, in_version
from ambientmesh.apiserver.paths import ResourcePath
from ambientmesh.apiserver.status import status_for
from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput, MeshError
from ambientmesh.store.aio import AsyncStore, Watch
from ambientmesh.store.filters import make_filter
from ambientmesh.store.types import EventType


class WatchStreams:
    """Answers watch requests from one store."""

    def __init__(self, store: AsyncStore, *, clock: Clock, bookmark_interval: float) -> None:
        self.store = store
        self.clock = clock
        self.bookmark_interval = bookmark_interval

    async def serve(self, request: web.Request, target: ResourcePath) -> web.StreamResponse:
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
                    await _stream(response, target, watch, bookmarks=bookmarks)
                finally:
                    ticker.cancel()
        return response

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


async def _stream(
    response: web.StreamResponse, target: ResourcePath, watch: Watch, *, bookmarks: bool
) -> None:
    """Write events until the watch ends; a failure after the headers went out can only be
    reported in the stream, as an ERROR event carrying a Status."""
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
            await response.write(dumps({"type": "ERROR", "object": status_for(error)}) + b"\n")


async def _send(
    response: web.StreamResponse, target: ResourcePath, items: list[tuple[EventType, str]]
) -> None:
    if not items:
        return
    rewrite = target.version != target.kind.preferred_version
    lines = []
    for event_type, doc in items:
        text = dumps(in_version(json.loads(doc), target)).decode() if rewrite else doc
        lines.append(f'{{"type":"{event_type}","object":{text}}}\n')
    await response.write("".join(lines).encode())


def _bookmark(target: ResourcePath, resource_version: int) -> bytes:
    obj = {
        "kind": target.kind.kind,
        "apiVersion": target.api_version,
        "metadata": {"resourceVersion": str(resource_version)},
    }
    return dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


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
