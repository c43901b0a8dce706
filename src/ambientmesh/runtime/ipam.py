"""Cluster address plan and address pools for pods and Services; pure.

Pod addresses come from one subnet per node (10.244.<index>.0/24 by default); the first host
address of that subnet is the node's own. Service VIPs come from 10.96.0.0/16; the first is
kept for the API server as in Kubernetes, and the DNS address (10.96.0.10) belongs to the
cluster router.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

from ambientmesh.errors import AlreadyExists, InvalidInput, Unavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class Addressing:
    """The address plan of one cluster."""

    pod_cidr: IPv4Network = field(default_factory=lambda: IPv4Network("10.244.0.0/16"))
    node_prefix: int = 24
    service_cidr: IPv4Network = field(default_factory=lambda: IPv4Network("10.96.0.0/16"))
    dns_ip: IPv4Address = field(default_factory=lambda: IPv4Address("10.96.0.10"))

    def __post_init__(self) -> None:
        if not self.pod_cidr.prefixlen < self.node_prefix <= 29:
            raise InvalidInput(
                f"node prefix /{self.node_prefix} must be longer than the pod CIDR "
                f"{self.pod_cidr} and at most /29"
            )
        if self.pod_cidr.overlaps(self.service_cidr):
            raise InvalidInput(
                f"pod CIDR {self.pod_cidr} overlaps service CIDR {self.service_cidr}"
            )
        if self.dns_ip not in self.service_cidr or self.dns_ip in _ends(self.service_cidr):
            raise InvalidInput(f"DNS address {self.dns_ip} is not a host of {self.service_cidr}")

    @classmethod
    def parse(
        cls,
        *,
        pod_cidr: str = "10.244.0.0/16",
        node_prefix: int = 24,
        service_cidr: str = "10.96.0.0/16",
        dns_ip: str = "10.96.0.10",
    ) -> Addressing:
        """Build from text (CLI flags, config), with errors that name the bad value."""
        return cls(
            pod_cidr=_network("pod CIDR", pod_cidr),
            node_prefix=node_prefix,
            service_cidr=_network("service CIDR", service_cidr),
            dns_ip=_address("DNS address", dns_ip),
        )

    @property
    def max_nodes(self) -> int:
        return 1 << (self.node_prefix - self.pod_cidr.prefixlen)

    @property
    def router_ip(self) -> IPv4Address:
        """The router namespace's own address: the DNS address, reachable from everywhere."""
        return self.dns_ip

    @property
    def api_server_ip(self) -> IPv4Address:
        return self.service_cidr.network_address + 1

    def node_subnet(self, index: int) -> IPv4Network:
        if not 0 <= index < self.max_nodes:
            raise InvalidInput(f"node index {index} is outside 0..{self.max_nodes - 1}")
        size = 1 << (32 - self.node_prefix)
        start = self.pod_cidr.network_address + index * size
        return IPv4Network(f"{start}/{self.node_prefix}")

    def node_ip(self, index: int) -> IPv4Address:
        return self.node_subnet(index).network_address + 1


class AddressPool:
    """Hands out the host addresses of a network, one per owner.

    Allocation rolls forward from the last address given (like CNI's host-local plugin) so
    a just-released address is not handed out again at once, while peers may still hold
    connection state for it.
    """

    def __init__(self, network: IPv4Network, *, reserved: Iterable[IPv4Address] = ()) -> None:
        self.network = network
        self._first = int(network.network_address) + 1
        self._last = int(network.broadcast_address) - 1
        self._reserved = frozenset(int(address) for address in reserved)
        self._by_owner: dict[str, IPv4Address] = {}
        self._by_address: dict[int, str] = {}
        self._cursor = self._first

    @property
    def allocated(self) -> Mapping[str, IPv4Address]:
        return dict(self._by_owner)

    def address_of(self, owner: str) -> IPv4Address | None:
        return self._by_owner.get(owner)

    def allocate(self, owner: str) -> IPv4Address:
        """An address for `owner`; the same one if it already holds one."""
        held = self._by_owner.get(owner)
        if held is not None:
            return held
        span = self._last - self._first + 1
        for step in range(span):
            candidate = self._first + (self._cursor - self._first + step) % span
            if candidate not in self._reserved and candidate not in self._by_address:
                self._cursor = candidate + 1 if candidate < self._last else self._first
                return self._hold(owner, candidate)
        raise Unavailable(f"no free address left in {self.network} ({len(self._by_owner)} in use)")

    def claim(self, owner: str, address: IPv4Address) -> IPv4Address:
        """Give `owner` exactly `address` (a Service's requested clusterIP, or state restored)."""
        value = int(address)
        if not self._first <= value <= self._last:
            raise InvalidInput(f"address {address} is not a host address of {self.network}")
        if value in self._reserved:
            raise InvalidInput(f"address {address} is reserved in {self.network}")
        holder = self._by_address.get(value)
        if holder is not None and holder != owner:
            raise AlreadyExists(f"address {address} is already allocated to {holder}")
        if owner in self._by_owner and self._by_owner[owner] != address:
            raise AlreadyExists(f"{owner} already holds {self._by_owner[owner]}")
        return self._hold(owner, value)

    def release(self, owner: str) -> IPv4Address | None:
        address = self._by_owner.pop(owner, None)
        if address is not None:
            del self._by_address[int(address)]
        return address

    def _hold(self, owner: str, value: int) -> IPv4Address:
        address = IPv4Address(value)
        self._by_owner[owner] = address
        self._by_address[value] = owner
        return address


def pod_pool(addressing: Addressing, node_index: int) -> AddressPool:
    """Pod addresses of one node: its subnet minus the node's own address."""
    return AddressPool(
        addressing.node_subnet(node_index), reserved=(addressing.node_ip(node_index),)
    )


def service_pool(addressing: Addressing) -> AddressPool:
    """Service VIPs: the service CIDR minus the API server and DNS addresses."""
    return AddressPool(
        addressing.service_cidr, reserved=(addressing.api_server_ip, addressing.dns_ip)
    )


def _ends(network: IPv4Network) -> tuple[IPv4Address, IPv4Address]:
    return network.network_address, network.broadcast_address


def _network(what: str, text: str) -> IPv4Network:
    try:
        network = ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidInput(f"invalid {what} {text!r}: {exc}") from exc
    if not isinstance(network, IPv4Network):
        raise InvalidInput(f"invalid {what} {text!r}: only IPv4 is supported")
    return network


def _address(what: str, text: str) -> IPv4Address:
    try:
        address = ip_address(text)
    except ValueError as exc:
        raise InvalidInput(f"invalid {what} {text!r}: {exc}") from exc
    if not isinstance(address, IPv4Address):
        raise InvalidInput(f"invalid {what} {text!r}: only IPv4 is supported")
    return address
