"""What the cluster network looks like, as iproute2 operations and sysctls per namespace; pure.

    pod netns            node netns                           router netns (am-<cluster>)
    eth0 10.244.1.7/32 ─ am<hash>         eth0 10.244.1.1/32 ─ am<hash>   lo 10.96.0.10/32 (DNS)
      10.244/16, 10.96/16   10.244.1.7/32 dev am<hash>           10.244.1.0/24 via 10.244.1.1
        via 10.244.1.1      10.244/16, 10.96/16 via 10.96.0.10   unreachable 10.244/16, 10.96/16
                            unreachable 10.244.1.0/24

Every hop is a routed point-to-point veth with /32 addresses, no bridges: a pod's gateway is
its node's address, a node's gateway is the router's. No namespace has a default route, so
traffic to anything outside the cluster fails at once with ENETUNREACH, and a cluster address
that nobody holds fails at once with an ICMP unreachable from the node or the router.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from ambientmesh.linux.iproute import AddAddress, AddRoute, AddVeth, LinkUp, Operation
from ambientmesh.runtime import names
from ambientmesh.runtime.ipam import Addressing

# Set in the router and node namespaces (never in pods: they belong to the pod and its proxy).
# New namespaces inherit IPv4 settings from the host, so state what routing here relies on.
FORWARDING_SYSCTLS: Mapping[str, int] = {
    "net.ipv4.conf.all.forwarding": 1,
    "net.ipv4.conf.all.rp_filter": 0,
    "net.ipv4.conf.default.rp_filter": 0,
    # Answer ARP for an address held on any interface (gateways live on lo and eth0).
    "net.ipv4.conf.all.arp_ignore": 0,
    "net.ipv4.conf.default.arp_ignore": 0,
    # "Unreachable" must be immediate every time, not rate-limited to one a second.
    "net.ipv4.icmp_ratelimit": 0,
}


def _host(address: IPv4Address) -> IPv4Network:
    return IPv4Network(f"{address}/32")


def router_operations(addressing: Addressing) -> tuple[Operation, ...]:
    """The router namespace before any node joins: its address and fail-fast routes."""
    return (
        LinkUp(dev="lo"),
        AddAddress(dev="lo", address=IPv4Interface(f"{addressing.router_ip}/32")),
        AddRoute(type="unreachable", destination=addressing.pod_cidr),
        AddRoute(type="unreachable", destination=addressing.service_cidr),
    )


def router_node_operations(
    addressing: Addressing, *, index: int, node_netns: str
) -> tuple[Operation, ...]:
    """In the router: the veth to a node and the route to that node's pod subnet."""
    link = names.link_name(node_netns)
    return (
        AddVeth(name=link, peer=names.UPLINK, peer_netns=node_netns),
        LinkUp(dev=link),
        AddRoute(
            destination=addressing.node_subnet(index),
            via=addressing.node_ip(index),
            dev=link,
            onlink=True,
            # ICMP errors from the router need a source that pods can route back to.
            src=addressing.router_ip,
        ),
    )


def node_operations(addressing: Addressing, *, index: int) -> tuple[Operation, ...]:
    """In a node, once its uplink exists: address, routes to the cluster, fail-fast local subnet."""
    via = addressing.router_ip
    return (
        LinkUp(dev="lo"),
        LinkUp(dev=names.UPLINK),
        AddAddress(dev=names.UPLINK, address=IPv4Interface(f"{addressing.node_ip(index)}/32")),
        AddRoute(destination=addressing.pod_cidr, via=via, dev=names.UPLINK, onlink=True),
        AddRoute(destination=addressing.service_cidr, via=via, dev=names.UPLINK, onlink=True),
        # Pod addresses of this node that no pod holds must not bounce to the router and back.
        AddRoute(type="unreachable", destination=addressing.node_subnet(index)),
    )


def node_pod_operations(*, pod_netns: str, pod_ip: IPv4Address) -> tuple[Operation, ...]:
    """In a node: the veth into a pod and the host route to the pod's address."""
    link = names.link_name(pod_netns)
    return (
        AddVeth(name=link, peer=names.UPLINK, peer_netns=pod_netns),
        LinkUp(dev=link),
        AddRoute(destination=_host(pod_ip), dev=link, scope="link"),
    )


def pod_operations(
    addressing: Addressing, *, node_index: int, pod_ip: IPv4Address
) -> tuple[Operation, ...]:
    """In a pod: loopback, its address, and routes to pods and Services via its node."""
    gateway = addressing.node_ip(node_index)
    return (
        LinkUp(dev="lo"),
        LinkUp(dev=names.UPLINK),
        AddAddress(dev=names.UPLINK, address=IPv4Interface(f"{pod_ip}/32")),
        AddRoute(destination=addressing.pod_cidr, via=gateway, dev=names.UPLINK, onlink=True),
        AddRoute(destination=addressing.service_cidr, via=gateway, dev=names.UPLINK, onlink=True),
    )


def resolv_conf(*, dns_ip: IPv4Address, domain: str, namespace: str | None) -> str:
    """A pod's resolv.conf (Kubernetes' ClusterFirst policy); a node's has no namespace."""
    search = [f"svc.{domain}", domain]
    if namespace is not None:
        search.insert(0, f"{namespace}.svc.{domain}")
    return (
        "# Written by ambientmesh: the cluster DNS server in the router namespace.\n"
        f"search {' '.join(search)}\n"
        f"nameserver {dns_ip}\n"
        "options ndots:5\n"
    )
