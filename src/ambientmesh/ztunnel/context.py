"""What every pod proxy of a ztunnel shares: configuration, state, certificates, pool, telemetry."""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass

from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.clock import Clock
from ambientmesh.hbone.pool import HbonePool
from ambientmesh.ztunnel.accesslog import AccessLog
from ambientmesh.ztunnel.certificates import WorkloadCertificates
from ambientmesh.ztunnel.config import ZtunnelConfig
from ambientmesh.ztunnel.connections import ConnectionRegistry
from ambientmesh.ztunnel.metrics import ProxyMetrics
from ambientmesh.ztunnel.model import SocketAddr, Workload
from ambientmesh.ztunnel.state import State
from ambientmesh.ztunnel.xds_sync import XdsSync


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyContext:
    """The process-wide services, handed to each pod proxy."""

    config: ZtunnelConfig
    xds: XdsSync
    certificates: WorkloadCertificates
    pool: HbonePool
    connections: ConnectionRegistry
    metrics: ProxyMetrics
    access_log: AccessLog
    clock: Clock
    rng: random.Random

    @property
    def state(self) -> State:
        return self.xds.state

    async def pod_workload(self, info: WorkloadInfo) -> Workload | None:
        """The ``Workload`` of a pod we proxy for, waiting for discovery to send it (ztunnel
        waits up to 5 s; None after that)."""
        state = self.xds.state
        return await self.xds.wait_for(
            lambda: state.workload_named(info.namespace, info.name),
            clock=self.clock,
            seconds=self.config.workload_wait,
        )


def peer_of(sock: socket.socket) -> SocketAddr:
    """The peer of a connected socket (an IPv4 peer of a dual-stack socket comes back as IPv4)."""
    return _address(sock.getpeername())


def local_of(sock: socket.socket) -> SocketAddr:
    return _address(sock.getsockname())


def _address(raw: tuple[str, int] | tuple[str, int, int, int]) -> SocketAddr:
    return SocketAddr.of(raw[0].split("%", 1)[0], raw[1])
