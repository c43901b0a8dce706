"""The API server: Kubernetes-style paths and JSON bodies over the store.

``/api/v1/...`` serves the core group and ``/apis/<group>/<version>/...`` the others; errors
are Kubernetes ``Status`` objects. The verbs live in ``handlers``, watch streams in ``watches``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp import web

from ambientmesh import __version__
from ambientmesh.apiserver import discovery
from ambientmesh.apiserver.bodies import json_response
from ambientmesh.apiserver.handlers import DETAILS, ResourceHandlers
from ambientmesh.apiserver.listeners import Listener
from ambientmesh.apiserver.paths import APPLY_PATH
from ambientmesh.apiserver.status import failure, status_for
from ambientmesh.apiserver.watches import WatchStreams
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError
from ambientmesh.resources.kinds import ALL_KINDS
from ambientmesh.store.aio import AsyncStore

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
        self._stop = asyncio.Event()
        watches = WatchStreams(store, clock=clock, bookmark_interval=bookmark_interval)
        handlers = ResourceHandlers(store, watches)
        self.app = web.Application(client_max_size=max_body_bytes, middlewares=[_errors])
        self.app.add_routes(list(extra_routes))
        router = self.app.router
        router.add_get("/version", self._version)
        for probe in ("/healthz", "/readyz", "/livez"):
            router.add_get(probe, self._health)
        router.add_get("/api", self._discover_core)
        router.add_get("/apis", self._discover_groups)
        router.add_post(APPLY_PATH, handlers.apply)
        router.add_route("*", "/api/{tail:.*}", handlers.resource)
        router.add_route("*", "/apis/{tail:.*}", handlers.resource)

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
        return json_response(
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
        return json_response(discovery.core_versions())

    async def _discover_groups(self, request: web.Request) -> web.Response:
        return json_response(discovery.group_list(ALL_KINDS))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as a Status object with the matching HTTP code."""
    try:
        return await handler(request)
    except MeshError as error:
        if error.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, error.message)
        return json_response(status_for(error, request.get(DETAILS)), status=error.status)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        message = error.text or error.reason
        if error.status == 404:
            message = f"the server could not find the requested resource: {request.path}"
        return json_response(failure(error.status, None, message), status=error.status)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return json_response(
            failure(500, "InternalError", "internal error; see the server log"), 500
        )
