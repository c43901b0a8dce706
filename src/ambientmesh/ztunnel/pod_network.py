"""How a pod proxy reaches into its pod: every socket it uses, made inside the pod's namespace.

``PodNetwork`` is the seam between the proxies and the kernel. The real one
(``NetnsPodNetwork``) creates listeners, marked outbound sockets and source-spoofing upstream
sockets inside the pod's network namespace (``ambientmesh.capture.sockets``) and reads the
pre-redirect destination with ``SO_ORIGINAL_DST``. Tests without root substitute a loopback
implementation, so the whole process runs unchanged on 127.0.0.0/8.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ambientmesh.capture.netns_fd import NetnsFd
from ambientmesh.capture.original_dst import original_dst as kernel_original_dst
from ambientmesh.capture.sockets import PodSocketFactory, pod_listener
from ambientmesh.capture.zds_client import PodWorkload
from ambientmesh.errors import MeshError
from ambientmesh.io.sockets import SocketAddress, SocketFactory
from ambientmesh.linux import netns as linux_netns
from ambientmesh.ztunnel.model import SocketAddr

log = logging.getLogger(__name__)

# /proc/sys/net resolves against the namespace of the thread that opens it.
_MIGRATE_REQUESTS = Path("/proc/sys/net/ipv4/tcp_migrate_req")


class PodNetwork(Protocol):
    """Sockets of one pod, as its proxy needs them."""

    def prepare(self) -> None:
        """Ready the pod's namespace for our listeners (best effort; logs what failed)."""
        ...

    def listener(self, port: int) -> socket.socket:
        """A listening socket on ``port`` in the pod (SO_REUSEPORT: a new ztunnel may bind too)."""
        ...

    def original_dst(self, sock: socket.socket) -> SocketAddr:
        """Where a captured connection was going before it was redirected to us."""
        ...

    def outbound(self) -> SocketFactory:
        """Sockets for ztunnel's own connections out of the pod (marked: not captured again)."""
        ...

    def upstream(self, source_ip: str) -> SocketFactory:
        """Sockets to the application carrying ``source_ip`` (the client's) as their source."""
        ...

    def hbone_address(self, address: SocketAddr) -> SocketAddress:
        """Where to dial a peer's HBONE listener known by ``address`` (pod IP and 15008)."""
        ...


PodNetworkFactory = Callable[[PodWorkload], PodNetwork]


class NetnsPodNetwork:
    """The real thing: sockets created inside the pod's network namespace."""

    def __init__(self, netns: NetnsFd) -> None:
        self._netns = netns
        self._outbound = PodSocketFactory(pod=netns)

    def prepare(self) -> None:
        # When a draining ztunnel closes its in-pod listeners, let the kernel hand connections
        # still queued on them to the new ztunnel's listeners (same SO_REUSEPORT group)
        # instead of resetting them (Linux >= 5.14).
        try:
            linux_netns.run_in(self._netns.fd, _MIGRATE_REQUESTS.write_text, "1\n")
        except (MeshError, OSError) as error:
            log.info("cannot enable %s in the pod namespace: %s", _MIGRATE_REQUESTS, error)

    def listener(self, port: int) -> socket.socket:
        return pod_listener(self._netns, port)

    def original_dst(self, sock: socket.socket) -> SocketAddr:
        found = kernel_original_dst(sock)
        return SocketAddr(ip=found.ip, port=found.port)

    def outbound(self) -> SocketFactory:
        return self._outbound

    def upstream(self, source_ip: str) -> SocketFactory:
        return PodSocketFactory(pod=self._netns, source_ip=source_ip)

    def hbone_address(self, address: SocketAddr) -> SocketAddress:
        return str(address.ip), address.port


def netns_pod_network(workload: PodWorkload) -> PodNetwork:
    return NetnsPodNetwork(workload.netns)
