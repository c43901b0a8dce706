"""The cluster network: namespaces, veths and routes for the router, nodes and pods of one cluster.

`ClusterNetwork` executes what `netplan` decides. Everything it creates lives in namespaces
named for the cluster (see `names`), so two clusters coexist and the host's own namespace gets
no interface or route. `teardown` finds the cluster's namespaces by name rather than from
memory, so it also cleans up after a supervisor that died, and is safe to run twice.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from ambientmesh.errors import AlreadyExists, InvalidInput, MeshError
from ambientmesh.linux import iproute, netns, sysctl
from ambientmesh.linux.errors import CommandFailed, LinuxError
from ambientmesh.runtime import names, netplan
from ambientmesh.runtime.ipam import Addressing

ETC_NETNS = Path("/etc/netns")
DEFAULT_DOMAIN = "cluster.local"
_DOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeNetwork:
    """Where a node sits on the cluster network."""

    name: str
    index: int
    netns: str
    ip: IPv4Address
    pod_subnet: IPv4Network


@dataclass(frozen=True, slots=True, kw_only=True)
class PodNetwork:
    """Where a pod sits on the cluster network."""

    namespace: str
    name: str
    node: str
    node_netns: str
    netns: str
    ip: IPv4Address
    node_link: str  # the pod's veth as seen from its node


class ClusterNetwork:
    """Creates and removes the network of one cluster. Needs root."""

    def __init__(
        self,
        cluster: str,
        *,
        addressing: Addressing | None = None,
        domain: str = DEFAULT_DOMAIN,
        etc_netns: Path = ETC_NETNS,
    ) -> None:
        names.validate_cluster_name(cluster)
        if len(domain) > 200 or not _DOMAIN.fullmatch(domain):
            raise InvalidInput(f"invalid cluster domain {domain!r}")
        self.cluster = cluster
        self.addressing = addressing or Addressing()
        self.domain = domain
        self.router_netns = names.router_netns(cluster)
        self._etc_netns = etc_netns

    # ---------------------------------------------------------------- facts, no side effects

    def node(self, name: str, index: int) -> NodeNetwork:
        return NodeNetwork(
            name=name,
            index=index,
            netns=names.node_netns(self.cluster, name),
            ip=self.addressing.node_ip(index),
            pod_subnet=self.addressing.node_subnet(index),
        )

    def pod(self, node: NodeNetwork, namespace: str, name: str, ip: IPv4Address) -> PodNetwork:
        if ip not in node.pod_subnet or ip in (node.ip, *_ends(node.pod_subnet)):
            raise InvalidInput(f"pod address {ip} is not a pod address of node {node.name}")
        pod_netns = names.pod_netns(self.cluster, namespace, name)
        return PodNetwork(
            namespace=namespace,
            name=name,
            node=node.name,
            node_netns=node.netns,
            netns=pod_netns,
            ip=ip,
            node_link=names.link_name(pod_netns),
        )

    def namespaces(self) -> list[str]:
        """This cluster's network namespaces that exist now."""
        return [name for name in netns.names() if names.owns_netns(self.cluster, name)]

    # ---------------------------------------------------------------- changes

    async def create(self) -> None:
        """Create the router namespace; nodes and pods are added afterwards."""
        if netns.exists(self.router_netns):
            raise AlreadyExists(
                f"cluster network {self.cluster!r} already exists (namespace "
                f"{self.router_netns}); tear it down first"
            )
        netns.create(self.router_netns)
        try:
            await sysctl.write(netplan.FORWARDING_SYSCTLS, netns_name=self.router_netns)
            await iproute.apply(netplan.router_operations(self.addressing), netns=self.router_netns)
        except BaseException:
            self._forget(self.router_netns)
            raise

    async def add_node(self, name: str, index: int) -> NodeNetwork:
        """Create a node namespace linked to the router; its pods get `node_subnet(index)`."""
        node = self.node(name, index)
        netns.create(node.netns)
        try:
            await sysctl.write(netplan.FORWARDING_SYSCTLS, netns_name=node.netns)
            await iproute.apply(
                netplan.router_node_operations(self.addressing, index=index, node_netns=node.netns),
                netns=self.router_netns,
            )
            await iproute.apply(
                netplan.node_operations(self.addressing, index=index), netns=node.netns
            )
            self._write_resolv_conf(node.netns, namespace=None)
        except BaseException:
            self._forget(node.netns)  # its veth, and the router's route over it, go with it
            raise
        return node

    async def add_pod(
        self, node: NodeNetwork, namespace: str, name: str, ip: IPv4Address
    ) -> PodNetwork:
        """Create a pod namespace with address `ip`, linked to its node, with resolv.conf."""
        pod = self.pod(node, namespace, name, ip)
        netns.create(pod.netns)
        try:
            await iproute.apply(
                netplan.node_pod_operations(pod_netns=pod.netns, pod_ip=ip), netns=node.netns
            )
            await iproute.apply(
                netplan.pod_operations(self.addressing, node_index=node.index, pod_ip=ip),
                netns=pod.netns,
            )
            self._write_resolv_conf(pod.netns, namespace=namespace)
        except BaseException:
            self._forget(pod.netns)
            raise
        return pod

    async def remove_pod(self, pod: PodNetwork) -> None:
        """Remove a pod's namespace and link; safe to call twice.

        Stop the pod's processes first: a namespace lives on while a process is inside.
        The node-side link is deleted explicitly so the node forgets the pod's address now.
        """
        if netns.exists(pod.node_netns):
            with contextlib.suppress(CommandFailed):  # already gone with the pod's namespace
                await iproute.apply([iproute.DeleteLink(dev=pod.node_link)], netns=pod.node_netns)
        self._forget(pod.netns)

    async def remove_node(self, node: NodeNetwork) -> None:
        """Remove a node's namespace (its pods should be removed first); safe to call twice."""
        self._forget(node.netns)

    async def teardown(self) -> list[str]:
        """Remove every namespace and /etc/netns directory of this cluster; return the names.

        Processes still inside a cluster namespace are killed: nothing may keep it alive.
        Links, routes and nftables tables all live inside those namespaces and go with them.
        """
        removed = []
        # Pods and nodes first, the router last, so a half-finished teardown still leaves a
        # namespace named for the cluster that the next run will find.
        for name in sorted(self.namespaces(), key=lambda n: (n == self.router_netns, n)):
            _kill_inside(name)
            self._forget(name)
            removed.append(name)
        for directory in self._etc_dirs():
            shutil.rmtree(directory, ignore_errors=True)
        return removed

    # ---------------------------------------------------------------- cluster DNS sockets

    def dns_sockets(self, port: int = 53) -> tuple[socket.socket, socket.socket]:
        """UDP and TCP sockets bound to the DNS address inside the router namespace."""
        address = (str(self.addressing.dns_ip), port)
        udp = netns.socket_in(self.router_netns, socket.AF_INET, socket.SOCK_DGRAM)
        tcp = netns.socket_in(self.router_netns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind(address)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(address)
            tcp.listen(128)
        except OSError as exc:
            udp.close()
            tcp.close()
            raise LinuxError(f"cannot bind cluster DNS to {address[0]}:{port}: {exc}") from exc
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp

    # ---------------------------------------------------------------- helpers

    def _write_resolv_conf(self, netns_name: str, *, namespace: str | None) -> None:
        directory = self._etc_netns / netns_name
        directory.mkdir(parents=True, exist_ok=True)
        text = netplan.resolv_conf(
            dns_ip=self.addressing.dns_ip, domain=self.domain, namespace=namespace
        )
        (directory / "resolv.conf").write_text(text)

    def _forget(self, netns_name: str) -> None:
        # Synchronous on purpose: it also runs while a cancelled creation unwinds.
        netns.delete(netns_name)
        shutil.rmtree(self._etc_netns / netns_name, ignore_errors=True)

    def _etc_dirs(self) -> list[Path]:
        try:
            entries = list(self._etc_netns.iterdir())
        except FileNotFoundError:
            return []
        return [entry for entry in entries if names.owns_netns(self.cluster, entry.name)]


def _kill_inside(netns_name: str) -> None:
    with contextlib.suppress(MeshError, OSError):  # the namespace may already be gone
        for pid in netns.pids(netns_name):
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _ends(network: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    return network.network_address, network.broadcast_address
