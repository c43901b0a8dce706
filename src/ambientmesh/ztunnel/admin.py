"""The admin endpoint (127.0.0.1:15000) and the metrics endpoint (15020), as aiohttp routes.

Admin: ``/config_dump`` (what this ztunnel knows and serves), ``/logging`` (show levels; POST
``?level=debug`` or ``?level=access:off,ambientmesh.ztunnel:debug`` to change them) and
``/quitquitquit`` (POST: drain and exit, as SIGTERM). Metrics: ``/metrics`` and
``/stats/prometheus``, Prometheus text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ambientmesh.capture.zds_client import ZdsClient
from ambientmesh.xds.client import DeltaDiscoveryClient
from ambientmesh.ztunnel.accesslog import InvalidLevel, log_levels, set_log_levels
from ambientmesh.ztunnel.config_dump import certificates_dump, state_dump
from ambientmesh.ztunnel.context import ProxyContext
from ambientmesh.ztunnel.metrics import CONTENT_TYPE, ProxyMetrics
from ambientmesh.ztunnel.pods import PodProxies


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSources:
    """Everything the admin endpoint reports on, and how to ask the process to stop."""

    context: ProxyContext
    pods: PodProxies
    discovery: DeltaDiscoveryClient
    zds: ZdsClient
    request_stop: Callable[[], None]


def admin_routes(sources: AdminSources) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        paths = ["/config_dump", "/logging", "/quitquitquit"]
        return web.Response(text="ztunnel admin\n" + "".join(f"  {p}\n" for p in paths))

    async def config_dump(request: web.Request) -> web.Response:
        return _json(dump(sources))

    async def logging_get(request: web.Request) -> web.Response:
        spec = request.query.get("level")
        if spec is None:
            return _json(log_levels())
        return _set_levels(spec)

    async def logging_post(request: web.Request) -> web.Response:
        return _set_levels(request.query.get("level", ""))

    async def quit(request: web.Request) -> web.Response:
        sources.request_stop()
        return web.Response(text="OK\n")

    return [
        web.get("/", index),
        web.get("/config_dump", config_dump),
        web.get("/logging", logging_get),
        web.post("/logging", logging_post),
        web.post("/quitquitquit", quit),
    ]


def metrics_routes(metrics: ProxyMetrics) -> list[web.RouteDef]:
    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    return [web.get("/metrics", scrape), web.get("/stats/prometheus", scrape)]


def dump(sources: AdminSources) -> dict[str, Any]:
    context = sources.context
    discovery, zds = sources.discovery, sources.zds
    return {
        **state_dump(context.state),
        "certificates": certificates_dump(context.certificates.states()),
        "pods": [
            {
                "uid": uid,
                "name": proxy.info.name,
                "namespace": proxy.info.namespace,
                "identity": str(proxy.identity),
            }
            for uid, (proxy, _) in sorted(sources.pods.proxies.items())
        ],
        "connections": {"inbound": len(context.connections)},
        "discovery": {
            "address": context.config.xds_address,
            "connected": discovery.connected,
            "synced": discovery.synced.is_set(),
            "streams": discovery.stats.streams,
            "responses": discovery.stats.responses,
            "nacks": discovery.stats.nacks,
            "lastError": discovery.stats.last_error or context.xds.last_error,
        },
        "zds": {
            "socket": str(context.config.zds_socket),
            "connected": zds.connected,
            "ready": zds.ready,
            "pending": sorted(zds.pending),
        },
    }


def _set_levels(spec: str) -> web.Response:
    try:
        return _json(set_log_levels(spec))
    except InvalidLevel as error:
        return web.Response(status=400, text=error.message + "\n")


def _json(document: Any) -> web.Response:
    return web.Response(text=json.dumps(document, indent=2) + "\n", content_type="application/json")
