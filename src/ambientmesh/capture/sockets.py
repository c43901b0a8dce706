"""Socket factories for ztunnel's sockets inside pod network namespaces.

A socket belongs to the network namespace of the thread that created it, for its whole life.
These factories create the socket inside the pod's namespace (`ambientmesh.linux.netns`) and
return it non-blocking, ready for the event loop in ztunnel's own namespace:

- `pod_listener`: 15001/15006/15008 in the pod, with SO_REUSEPORT so a restarted ztunnel binds
  beside the old one while it drains (reference 2.1, 2.10).
- `pod_outbound_socket` / `connect_from_pod`: ztunnel's own connections out of the pod, marked
  0x539 so the capture rules let them pass instead of redirecting them back (reference 2.7).
- `spoofed_upstream_socket` / `connect_spoofed`: the connection to the application carrying the
  client's IP as source (IP_TRANSPARENT + bind), marked so replies come back to ztunnel
  through the connmark and policy-routing rules (reference 2.5, 2.6).
"""

from __future__ import annotations

import asyncio
import errno
import socket
from dataclasses import dataclass

from ambientmesh.capture.netns_fd import NetnsFd
from ambientmesh.capture.settings import ZTUNNEL_MARK
from ambientmesh.errors import ConnectFailed, UpstreamTimeout
from ambientmesh.io.sockets import (
    SocketAddress,
    family_of,
    set_keepalive,
    set_mark,
    set_nodelay,
    set_transparent,
)
from ambientmesh.linux import netns as linux_netns

# <linux/in.h> and <linux/in6.h>: bind a source address that is not (yet) local.
IP_FREEBIND = 15
IPV6_FREEBIND = 78

PodNetns = NetnsFd | str | int


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSocketFactory:
    """An `ambientmesh.io.sockets.SocketFactory` for ztunnel: sockets made inside the pod,
    marked 0x539, and bound to `source_ip` (the client's, spoofed) when one is given."""

    pod: PodNetns
    mark: int = ZTUNNEL_MARK
    source_ip: str | None = None

    def __call__(self, destination: SocketAddress) -> socket.socket:
        if self.source_ip is not None:
            return spoofed_upstream_socket(self.pod, self.source_ip, mark=self.mark)
        return pod_outbound_socket(self.pod, family_of(destination[0]), mark=self.mark)


def pod_listener(
    pod: PodNetns,
    port: int,
    *,
    host: str = "::",
    reuse_port: bool = True,
    transparent: bool = False,
    backlog: int = 1024,
) -> socket.socket:
    """A listening TCP socket inside the pod. `host="::"` is dual-stack, falling back to IPv4
    when the namespace has no IPv6."""
    try:
        return _listen(
            pod, host, port, reuse_port=reuse_port, transparent=transparent, backlog=backlog
        )
    except OSError as exc:
        if host == "::" and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return pod_listener(
                pod, port, host="0.0.0.0", reuse_port=reuse_port, transparent=transparent
            )
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ConnectFailed(
            f"cannot listen on {where} in the pod namespace: {exc.strerror}"
        ) from exc


def _listen(
    pod: PodNetns, host: str, port: int, *, reuse_port: bool, transparent: bool, backlog: int
) -> socket.socket:
    family = family_of(host)
    sock = _socket_in(pod, family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if transparent:
            _set_transparent(sock)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def pod_outbound_socket(
    pod: PodNetns, family: int = socket.AF_INET, *, mark: int = ZTUNNEL_MARK
) -> socket.socket:
    """An unconnected TCP socket inside the pod whose packets carry `mark` (skipped by capture)."""
    sock = _socket_in(pod, family)
    try:
        set_mark(sock, mark)
        set_nodelay(sock)
        set_keepalive(sock)
    except OSError as exc:
        sock.close()
        raise ConnectFailed(
            f"cannot set SO_MARK {mark:#x} (needs CAP_NET_ADMIN): {exc.strerror}"
        ) from exc
    return sock


def spoofed_upstream_socket(
    pod: PodNetns, source_ip: str, *, mark: int = ZTUNNEL_MARK
) -> socket.socket:
    """A TCP socket inside the pod bound to `source_ip` (an address the pod does not own)."""
    family = family_of(source_ip)
    sock = pod_outbound_socket(pod, family, mark=mark)
    try:
        _set_transparent(sock)
        sock.bind((source_ip, 0))
    except OSError as exc:
        sock.close()
        raise ConnectFailed(f"cannot bind to spoofed source {source_ip}: {exc.strerror}") from exc
    return sock


async def connect_from_pod(
    pod: PodNetns, destination: tuple[str, int], *, deadline: float, mark: int = ZTUNNEL_MARK
) -> socket.socket:
    """Connect from inside the pod, marked; the socket is returned connected and non-blocking."""
    sock = PodSocketFactory(pod=pod, mark=mark)(destination)
    return await _connect(sock, destination, deadline)


async def connect_spoofed(
    pod: PodNetns,
    source_ip: str,
    destination: tuple[str, int],
    *,
    deadline: float,
    mark: int = ZTUNNEL_MARK,
) -> socket.socket:
    """Connect from inside the pod to `destination` with `source_ip` as the source address."""
    sock = PodSocketFactory(pod=pod, mark=mark, source_ip=source_ip)(destination)
    return await _connect(sock, destination, deadline)


async def _connect(
    sock: socket.socket, destination: tuple[str, int], deadline: float
) -> socket.socket:
    try:
        async with asyncio.timeout(deadline):
            await asyncio.get_running_loop().sock_connect(sock, destination)
    except TimeoutError as exc:
        sock.close()
        raise UpstreamTimeout(
            f"connecting to {destination[0]}:{destination[1]} timed out after {deadline}s"
        ) from exc
    except OSError as exc:
        sock.close()
        raise ConnectFailed(
            f"connecting to {destination[0]}:{destination[1]} failed: {exc.strerror}"
        ) from exc
    except BaseException:
        sock.close()
        raise
    return sock


def _socket_in(pod: PodNetns, family: int) -> socket.socket:
    target = pod.fd if isinstance(pod, NetnsFd) else pod
    sock = linux_netns.socket_in(target, family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


def _set_transparent(sock: socket.socket) -> None:
    # IP_TRANSPARENT allows binding a non-local address; FREEBIND also when no route exists yet.
    set_transparent(sock)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
