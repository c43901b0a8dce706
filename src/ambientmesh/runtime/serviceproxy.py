"""Keeps every node's kube-proxy table and the cluster DNS zone equal to the ready endpoints.

Any Service or Pod change marks the state dirty; one loop recomputes everything from the
informer caches (`endpoints`, pure) and rewrites only what differs: the nft table of each node
in one transaction, the DNS zone in one assignment. Bursts of changes coalesce into one pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from ipaddress import IPv4Address

from ambientmesh.apiserver.informer import Change, Informer
from ambientmesh.clock import Clock
from ambientmesh.errors import MeshError
from ambientmesh.runtime import endpoints, kubeproxy
from ambientmesh.runtime.dns import ClusterDns
from ambientmesh.runtime.dnszone import build_zone
from ambientmesh.runtime.network import NodeNetwork

log = logging.getLogger(__name__)

RETRY_DELAY = 1.0


class ServiceProxy:
    def __init__(
        self,
        *,
        services: Informer,
        pods: Informer,
        nodes: Sequence[NodeNetwork],
        dns: ClusterDns,
        domain: str,
        clock: Clock,
    ) -> None:
        self._services = services
        self._pods = pods
        self._nodes = list(nodes)
        self._dns = dns
        self._domain = domain
        self._clock = clock
        self._dirty = asyncio.Event()
        self._applied: list[kubeproxy.ServicePort] | None = None
        self._records: dict[str, list[IPv4Address]] | None = None
        self.synced = asyncio.Event()

    def changed(self, change: Change | None = None) -> None:
        self._dirty.set()

    async def run(self) -> None:
        self._dirty.set()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync_once()
            except MeshError as error:
                log.warning("service proxy: %s; retrying in %.0f s", error.message, RETRY_DELAY)
                await self._clock.sleep(RETRY_DELAY)
                self._dirty.set()
                continue
            self.synced.set()

    async def sync_once(self) -> None:
        services, pods = self._services.items(), self._pods.items()
        records = endpoints.dns_records(services, pods, domain=self._domain)
        if records != self._records:
            self._dns.update(build_zone(self._domain, records))
            self._records = records
        ports = endpoints.service_ports(services, pods)
        if ports != self._applied:
            for node in self._nodes:
                await kubeproxy.apply(ports, node_ip=node.ip, netns=node.netns)
            self._applied = ports
            ready = sum(len(port.endpoints) for port in ports)
            log.info("kube-proxy: %d service ports, %d ready endpoints", len(ports), ready)
