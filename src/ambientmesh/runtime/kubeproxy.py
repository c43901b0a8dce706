"""The kube-proxy role: an nftables table per node that sends Service VIPs to ready endpoints.

`render` is pure (facts in, ruleset text out); `apply` swaps the node's whole table in one
nft transaction. For each VIP:port the table

- DNATs new connections from pods (prerouting) and from the node itself (output) to one ready
  endpoint, picked at random per connection (`numgen random`), as kube-proxy does;
- masquerades a pod reaching itself through a VIP (hairpin) to the node address, because a
  pod would drop a packet that arrives with its own address as source;
- rejects at once when no endpoint is ready: a TCP reset, or ICMP port unreachable for UDP.

Nothing here touches pod namespaces: capture inside a pod (ztunnel's rules) sees the VIP first.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal

from ambientmesh.errors import InvalidInput
from ambientmesh.linux import nftables

TABLE = "ambientmesh-proxy"
HAIRPIN_MARK = 0x4000  # the bit kube-proxy uses for "masquerade this"
Protocol = Literal["TCP", "UDP"]
_COMMENT = re.compile(r"[A-Za-z0-9._:/-]{1,128}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    ip: IPv4Address
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePort:
    """One port of one Service VIP and its ready endpoints."""

    name: str  # for humans reading `nft list`, e.g. "default/echo:http"
    vip: IPv4Address
    port: int
    protocol: Protocol = "TCP"
    endpoints: tuple[Endpoint, ...] = ()


def render(services: Iterable[ServicePort], *, node_ip: IPv4Address) -> str:
    """The full `table ip ambientmesh-proxy { ... }` definition for one node."""
    ports = _checked(services)
    served = [port for port in ports if port.endpoints]
    lines = [f"table ip {TABLE} {{"]
    lines += _block(
        "map service-ips",
        [
            "type ipv4_addr . inet_proto . inet_service : verdict",
            *_elements(f"{_key(port)} : goto {_service_chain(port)}" for port in served),
        ],
    )
    lines += _block(
        "set no-endpoints",
        [
            "type ipv4_addr . inet_proto . inet_service",
            *_elements(_key(port) for port in ports if not port.endpoints),
        ],
    )
    lookup = "ip daddr . meta l4proto . th dport"
    lines += _chain(
        "nat-prerouting",
        "type nat hook prerouting priority dstnat; policy accept;",
        [f"{lookup} vmap @service-ips"],
    )
    lines += _chain(
        "nat-output",
        "type nat hook output priority -100; policy accept;",
        [f"{lookup} vmap @service-ips"],
    )
    lines += _chain(
        "nat-postrouting",
        "type nat hook postrouting priority srcnat; policy accept;",
        [f"meta mark & {HAIRPIN_MARK:#x} == {HAIRPIN_MARK:#x} snat ip to {node_ip}"],
    )
    for hook in ("forward", "output"):
        lines += _chain(
            f"filter-{hook}",
            f"type filter hook {hook} priority filter; policy accept;",
            [f"{lookup} @no-endpoints goto reject-no-endpoints"],
        )
    lines += _chain(
        "reject-no-endpoints", None, ["meta l4proto tcp reject with tcp reset", "reject"]
    )
    for port in served:
        lines += _service_chains(port)
    lines.append("}")
    return "\n".join(lines) + "\n"


async def apply(
    services: Iterable[ServicePort], *, node_ip: IPv4Address, netns: str | None
) -> None:
    """Replace the node's table with one for `services`, atomically."""
    await nftables.replace_table("ip", TABLE, render(services, node_ip=node_ip), netns=netns)


async def remove(*, netns: str | None) -> None:
    await nftables.delete_table("ip", TABLE, netns=netns)


def _checked(services: Iterable[ServicePort]) -> list[ServicePort]:
    seen: dict[tuple[IPv4Address, str, int], str] = {}
    ports = []
    for port in services:
        if not _COMMENT.fullmatch(port.name):
            raise InvalidInput(
                f"service port name {port.name!r} has characters nft comments refuse"
            )
        if port.protocol not in ("TCP", "UDP"):
            raise InvalidInput(f"{port.name}: protocol {port.protocol!r} is not TCP or UDP")
        _check_port(port.name, port.port)
        for endpoint in port.endpoints:
            _check_port(f"{port.name} endpoint {endpoint.ip}", endpoint.port)
        key = (port.vip, port.protocol, port.port)
        if key in seen:
            raise InvalidInput(
                f"{port.name} and {seen[key]} both claim {port.vip}:{port.port}/{port.protocol}"
            )
        seen[key] = port.name
        unique = tuple(sorted(set(port.endpoints), key=lambda e: (e.ip, e.port)))
        ports.append(
            ServicePort(
                name=port.name,
                vip=port.vip,
                port=port.port,
                protocol=port.protocol,
                endpoints=unique,
            )
        )
    return sorted(ports, key=lambda p: (p.vip, p.protocol, p.port))


def _check_port(what: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidInput(f"{what}: port {port} is outside 1..65535")


def _service_chains(port: ServicePort) -> list[str]:
    chains = [_endpoint_chain(port, endpoint) for endpoint in port.endpoints]
    if len(chains) == 1:
        pick = f"goto {chains[0]}"
    else:
        choices = ", ".join(f"{index} : goto {chain}" for index, chain in enumerate(chains))
        pick = f"numgen random mod {len(chains)} vmap {{ {choices} }}"
    lines = _chain(_service_chain(port), None, [f'{pick} comment "{port.name}"'])
    proto = port.protocol.lower()
    for endpoint, chain in zip(port.endpoints, chains, strict=True):
        lines += _chain(
            chain,
            None,
            [
                f"ip saddr {endpoint.ip} meta mark set meta mark | {HAIRPIN_MARK:#x}",
                f"meta l4proto {proto} dnat ip to {endpoint.ip}:{endpoint.port}",
            ],
        )
    return lines


def _key(port: ServicePort) -> str:
    return f"{port.vip} . {port.protocol.lower()} . {port.port}"


def _service_chain(port: ServicePort) -> str:
    return "svc-" + _digest(_key(port))


def _endpoint_chain(port: ServicePort, endpoint: Endpoint) -> str:
    return "ep-" + _digest(f"{_key(port)} > {endpoint.ip}:{endpoint.port}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _elements(items: Iterable[str]) -> list[str]:
    listed = list(items)
    if not listed:
        return []
    return ["elements = {", *(f"\t{item}," for item in listed), "}"]


def _block(header: str, body: Sequence[str]) -> list[str]:
    return [f"\t{header} {{", *(f"\t\t{line}" for line in body), "\t}"]


def _chain(name: str, hook: str | None, rules: Sequence[str]) -> list[str]:
    return _block(f"chain {name}", ([hook] if hook else []) + list(rules))
