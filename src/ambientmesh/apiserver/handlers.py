"""The resource verbs on /api and /apis: get, list, watch, create, update, delete, and apply."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ambientmesh.apiserver import discovery
from ambientmesh.apiserver.bodies import dumps, in_version, json_response, object_for, read_json
from ambientmesh.apiserver.paths import ResourcePath, parse_resource_path
from ambientmesh.apiserver.watches import WatchStreams
from ambientmesh.errors import InvalidInput
from ambientmesh.resources.kinds import ALL_KINDS
from ambientmesh.store.aio import AsyncStore
from ambientmesh.store.filters import make_filter

# What a failed request was about, for the ``details`` of its Status.
DETAILS = web.RequestKey("details", dict[str, str])


class MethodNotAllowed(InvalidInput):
    status = 405
    reason = "MethodNotAllowed"


class ResourceHandlers:
    """Answers resource requests from one store."""

    def __init__(self, store: AsyncStore, watches: WatchStreams) -> None:
        self.store = store
        self._watches = watches

    async def resource(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s]
        if request.method == "GET" and _is_discovery(segments):
            return json_response(_discovery_for(segments))
        target = parse_resource_path(request.path)
        details = {"group": target.kind.group, "kind": target.kind.plural}
        if target.name is not None:
            details["name"] = target.name
        request[DETAILS] = details
        method = request.method
        if target.name is None and method == "GET":
            if request.query.get("watch") in ("true", "1"):
                return await self._watches.serve(request, target)
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

    async def apply(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise InvalidInput('the apply body must be {"items": [<objects>...], "dryRun": <bool>}')
        dry_run = body.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise InvalidInput(f"dryRun must be true or false, not {dry_run!r}")
        results = await self.store.apply(body["items"], dry_run=dry_run)
        return json_response(
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

    async def _get(self, target: ResourcePath) -> web.Response:
        assert target.name is not None
        obj = await self.store.read(
            self.store.store.get, target.kind, target.name, target.namespace
        )
        return json_response(in_version(obj, target))

    async def _create(self, request: web.Request, target: ResourcePath) -> web.Response:
        if target.kind.namespaced and target.namespace is None:
            raise MethodNotAllowed(
                f"{target.kind.qualified_plural} are namespaced; create them under "
                f"/namespaces/<namespace>/{target.kind.plural}"
            )
        obj = object_for(target, await read_json(request))
        created = await self.store.create(obj)
        return json_response(in_version(created, target), status=201)

    async def _update(self, request: web.Request, target: ResourcePath) -> web.Response:
        obj = object_for(target, await read_json(request))
        if target.subresource == "status":
            updated = await self.store.update_status(obj)
        else:
            updated = await self.store.update(obj)
        return json_response(in_version(updated, target))

    async def _delete(self, target: ResourcePath) -> web.Response:
        assert target.name is not None
        deleted = await self.store.delete(target.kind, target.name, target.namespace)
        return json_response(in_version(deleted, target))

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
            docs = [dumps(in_version(json.loads(doc), target)).decode() for doc in docs]
        head = dumps(
            {
                "apiVersion": target.api_version,
                "kind": f"{target.kind.kind}List",
                "metadata": {"resourceVersion": str(snap.resource_version)},
            }
        )
        body = head[:-1] + b',"items":[' + ",".join(docs).encode() + b"]}"
        return web.Response(body=body, content_type="application/json")


def _is_discovery(segments: list[str]) -> bool:
    return segments == ["api", "v1"] or (segments[:1] == ["apis"] and len(segments) in (2, 3))


def _discovery_for(segments: list[str]) -> dict[str, Any]:
    if segments == ["api", "v1"]:
        return discovery.resource_list(ALL_KINDS, "", "v1")
    if len(segments) == 2:
        return discovery.group(ALL_KINDS, segments[1])
    return discovery.resource_list(ALL_KINDS, segments[1], segments[2])
