"""Pods on 127.0.0.0/8 instead of network namespaces, so a whole ztunnel runs without root.

Every "pod" has its own loopback address. Its listeners bind that address on ephemeral ports;
``hbone_address`` maps ``<pod ip>:15008`` to wherever that pod's HBONE listener really is.
Capture is simulated: a test client registers the destination it "meant" before connecting to
the pod's outbound (or plaintext) listener, and ``original_dst`` looks it up by the client's
address, as the kernel's conntrack would.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from ambientmesh.capture.errors import NotRedirected
from ambientmesh.capture.zds_client import PodWorkload
from ambientmesh.io.sockets import SocketAddress, SocketFactory, TcpSocketFactory
from ambientmesh.ztunnel.model import HBONE_PORT, SocketAddr
from ambientmesh.ztunnel.pod_network import PodNetwork


@dataclass
class LoopbackNet:
    """What every loopback pod shares: pod IPs by uid, bound ports, "conntrack"."""

    ips: dict[str, str] = field(default_factory=dict)  # uid -> 127.0.0.x
    ports: dict[tuple[str, int], int] = field(default_factory=dict)  # (ip, wanted) -> bound
    redirected: dict[tuple[str, int], SocketAddr] = field(default_factory=dict)

    def network(self, workload: PodWorkload) -> PodNetwork:
        return LoopbackPod(self, self.ips[workload.uid])

    def listening(self, ip: str, port: int) -> tuple[str, int]:
        return ip, self.ports[(ip, port)]

    async def dial(self, pod_ip: str, port: int, destination: SocketAddr) -> socket.socket:
        """Connect from ``pod_ip`` to the pod's listener ``port`` (15001, 15006) as if the
        kernel had redirected a connection to ``destination`` there."""
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((pod_ip, 0))
        self.redirected[sock.getsockname()[:2]] = destination
        await asyncio.get_running_loop().sock_connect(sock, self.listening(pod_ip, port))
        return sock


class LoopbackPod:
    def __init__(self, net: LoopbackNet, ip: str) -> None:
        self._net = net
        self._ip = ip

    def prepare(self) -> None:
        pass

    def listener(self, port: int) -> socket.socket:
        sock = socket.create_server((self._ip, 0), reuse_port=True)
        sock.setblocking(False)
        self._net.ports[(self._ip, port)] = sock.getsockname()[1]
        return sock

    def original_dst(self, sock: socket.socket) -> SocketAddr:
        found = self._net.redirected.pop(sock.getpeername()[:2], None)
        if found is None:
            raise NotRedirected("not a registered loopback connection")
        return found

    def outbound(self) -> SocketFactory:
        return TcpSocketFactory(source_ip=self._ip)

    def upstream(self, source_ip: str) -> SocketFactory:
        return TcpSocketFactory(source_ip=source_ip)

    def hbone_address(self, address: SocketAddr) -> SocketAddress:
        ip = str(address.ip)
        if address.port == HBONE_PORT and (ip, HBONE_PORT) in self._net.ports:
            return self._net.listening(ip, HBONE_PORT)
        return ip, address.port
