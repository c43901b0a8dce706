"""Numbers capture shares with ztunnel: ports, packet marks, routing table, probe address."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput

# Ports of ztunnel's listeners inside every enrolled pod (reference 2.1).
OUTBOUND_PORT = 15001
INBOUND_PLAINTEXT_PORT = 15006
INBOUND_HBONE_PORT = 15008

# SO_MARK on every socket ztunnel opens inside a pod; the rules skip such packets (1337).
ZTUNNEL_MARK = 0x539
# Connection mark for connections ztunnel opened with a spoofed source (reference 2.7).
SPOOFED_CONNMARK = 0x111
# Only these bits of the packet and connection marks are ours; the rest belong to others.
MARK_MASK = 0xFFF
# Policy routing for replies on spoofed connections: `ip rule pref 32764 fwmark ... table 100`.
ROUTE_TABLE = 100
RULE_PRIORITY = 32764

# The kubelet's health probes are SNATed to this address on the node and bypass capture.
PROBE_SNAT_IPV4 = "169.254.7.127"
PROBE_SNAT_IPV6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"

# What the caller records on a captured pod (istiod reads it to set tunnel_protocol=HBONE).
REDIRECTION_ANNOTATION = "ambient.istio.io/redirection"
REDIRECTION_ENABLED = "enabled"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureSettings:
    """Everything the pod-namespace rules depend on; the defaults are Istio's."""

    outbound_port: int = OUTBOUND_PORT
    inbound_plaintext_port: int = INBOUND_PLAINTEXT_PORT
    inbound_hbone_port: int = INBOUND_HBONE_PORT
    ztunnel_mark: int = ZTUNNEL_MARK
    spoofed_connmark: int = SPOOFED_CONNMARK
    mark_mask: int = MARK_MASK
    route_table: int = ROUTE_TABLE
    rule_priority: int = RULE_PRIORITY
    probe_ipv4: str = PROBE_SNAT_IPV4
    probe_ipv6: str = PROBE_SNAT_IPV6
    # Render IPv6 rules and routes too (the nftables tables are `inet`, so both families).
    ipv6: bool = True
    # False mirrors the `ambient.istio.io/bypass-inbound-capture` annotation: no 15006 redirect.
    inbound_capture: bool = True

    def __post_init__(self) -> None:
        ports = (self.outbound_port, self.inbound_plaintext_port, self.inbound_hbone_port)
        for port in ports:
            if not 1 <= port <= 65535:
                raise InvalidInput(f"capture port {port} is outside 1-65535")
        if len(set(ports)) != 3:
            raise InvalidInput(f"capture ports must differ, got {ports}")
        for name, mark in (
            ("ztunnel_mark", self.ztunnel_mark),
            ("connmark", self.spoofed_connmark),
        ):
            if mark <= 0 or mark & ~self.mark_mask:
                raise InvalidInput(
                    f"{name} {mark:#x} must be non-zero and inside mask {self.mark_mask:#x}"
                )
        if self.ztunnel_mark == self.spoofed_connmark:
            raise InvalidInput("ztunnel_mark and connmark must differ")
        if not 1 <= self.route_table < 2**31 or self.route_table in (253, 254, 255):
            raise InvalidInput(f"route table {self.route_table} is reserved or out of range")
        if not 1 <= self.rule_priority < 32766:
            raise InvalidInput(f"rule priority {self.rule_priority} must be in 1-32765")
        _require_family(self.probe_ipv4, 4, "probe_ipv4")
        _require_family(self.probe_ipv6, 6, "probe_ipv6")


def _require_family(text: str, version: int, name: str) -> None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError as exc:
        raise InvalidInput(f"{name}: {text!r} is not an IP address") from exc
    if address.version != version:
        raise InvalidInput(f"{name}: {text} is not an IPv{version} address")
