"""Store changes -> the ambient computation -> the discovery server, plus what reads its result.

``DiscoveryFeed`` takes each informer change, applies it to the ``AmbientIndex`` and pushes
the changed outputs to the ``DeltaDiscoveryServer``; status facts go to a listener (the
status controller). It also answers the CA's "is this identity scheduled on that node?" and
serves the per-proxy config dump.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ambientmesh.apiserver.informer import Change
from ambientmesh.controlplane import configdump
from ambientmesh.controlplane.ambient.index import AmbientIndex, Changes
from ambientmesh.identity.spiffe import Identity
from ambientmesh.xds.server import DeltaDiscoveryServer
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL

log = logging.getLogger(__name__)

CONFIG_DUMP_PATH = "/apis/ambientmesh.io/v1/configdump"

StatusListener = Callable[[Changes], None]


class DiscoveryFeed:
    def __init__(
        self,
        index: AmbientIndex,
        server: DeltaDiscoveryServer,
        *,
        on_status: StatusListener | None = None,
    ) -> None:
        self.index = index
        self.server = server
        self.on_status = on_status

    def handler(self, kind: str) -> Callable[[Change], None]:
        """An informer handler feeding changes of ``kind``."""

        def handle(change: Change) -> None:
            if change.type == "DELETED":
                metadata = change.object.get("metadata") or {}
                key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
                self.publish(self.index.apply(kind, None, key=key))
            else:
                self.publish(self.index.apply(kind, change.object))

        return handle

    def publish(self, changes: Changes) -> None:
        if changes.authorizations:
            self.server.update(AUTHORIZATION_TYPE_URL, changes.authorizations)
        if changes.addresses:
            self.server.update(ADDRESS_TYPE_URL, changes.addresses)
        if self.on_status is not None and (changes.service_bindings or changes.policy_conversions):
            self.on_status(changes)

    async def identity_scheduled(self, node: str, identity: Identity) -> bool:
        """The CA signs ``identity`` for ``node`` only while such a pod runs there."""
        if identity.trust_domain != self.index.config.trust_domain:
            return False
        pods = self.index.pods_on_node(node)
        return any(
            pod.meta.namespace == identity.namespace
            and pod.service_account == identity.service_account
            and pod.phase not in ("Succeeded", "Failed")
            for pod in pods
        )

    def config_dump(self, node: str | None) -> dict[str, Any]:
        """What the ztunnel of ``node`` is sent (every ztunnel gets the same), and its stream."""
        dump = configdump.dump(self.index.addresses.values(), self.index.authorizations.values())
        if node is not None:
            streams = [info for info in self.server.streams() if info.peer.node == node]
            dump["proxy"] = {
                "node": node,
                "connected": bool(streams),
                "streams": [
                    {
                        "identity": info.peer.identity,
                        "nodeId": info.node_id,
                        "resources": dict(info.subscriptions),
                        "inFlight": info.in_flight,
                    }
                    for info in streams
                ],
            }
        return dump

    def routes(self) -> list[web.RouteDef]:
        """``GET /apis/ambientmesh.io/v1/configdump[?node=N]`` for the API server."""

        async def handle(request: web.Request) -> web.Response:
            return web.json_response(self.config_dump(request.query.get("node") or None))

        return [web.get(CONFIG_DUMP_PATH, handle)]
