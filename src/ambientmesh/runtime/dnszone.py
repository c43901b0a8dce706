"""The cluster DNS zone and how a query against it is answered; pure (bytes in, bytes out).

Answers A records for names in the cluster domain from a record set the runtime keeps up to
date (`<svc>.<ns>.svc.cluster.local` and any other name it chooses). Inside the domain an
unknown name is NXDOMAIN and a known name without the asked type is NODATA, both with the
zone's SOA so resolvers cache the miss briefly. Outside the domain the answer is REFUSED:
the cluster DNS never forwards, as nothing leaves the cluster.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ambientmesh.errors import InvalidInput

DEFAULT_TTL = 5  # seconds, as CoreDNS's kubernetes plugin: Services change often
UDP_PLAIN_LIMIT = 512
UDP_EDNS_CAP = 4096


def service_fqdn(service: str, namespace: str, domain: str) -> str:
    return f"{service}.{namespace}.svc.{domain}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    """An immutable snapshot of the records the cluster DNS serves."""

    origin: dns.name.Name
    records: Mapping[dns.name.Name, tuple[IPv4Address, ...]]
    soa: dns.rrset.RRset
    ttl: int = DEFAULT_TTL
    # Names with no records of their own but records below them ("empty non-terminals").
    interior: frozenset[dns.name.Name] = field(default_factory=frozenset)


def build_zone(
    domain: str, records: Mapping[str, Iterable[IPv4Address]], *, ttl: int = DEFAULT_TTL
) -> Zone:
    """A zone for `domain` from {fully qualified name: addresses}; every name must be inside it."""
    try:
        origin = dns.name.from_text(domain)
    except dns.exception.DNSException as exc:
        raise InvalidInput(f"invalid DNS domain {domain!r}: {exc}") from exc
    table: dict[dns.name.Name, tuple[IPv4Address, ...]] = {}
    interior: set[dns.name.Name] = set()
    for text, addresses in records.items():
        try:
            name = dns.name.from_text(text)
        except dns.exception.DNSException as exc:
            raise InvalidInput(f"invalid DNS name {text!r}: {exc}") from exc
        if not name.is_subdomain(origin) or name == origin:
            raise InvalidInput(f"DNS name {text!r} is not inside the cluster domain {domain!r}")
        table[name] = tuple(sorted(set(addresses)))
        parent = name.parent()
        while parent != origin:
            interior.add(parent)
            parent = parent.parent()
    return Zone(
        origin=origin,
        records=table,
        soa=_soa_rrset(origin, ttl),
        ttl=ttl,
        interior=frozenset(interior),
    )


def answer(query: bytes, zone: Zone, *, udp: bool) -> bytes | None:
    """The response to one DNS message, or None when it deserves no answer at all."""
    try:
        message = dns.message.from_wire(query)
    except dns.message.ShortHeader:
        return None
    except dns.exception.DNSException:
        return _format_error(query)
    if message.flags & dns.flags.QR:
        return None  # a response sent to us: answering could start a loop
    response = dns.message.make_response(message, recursion_available=False)
    _fill(response, message, zone)
    return _to_wire(response, message, udp=udp)


def _fill(response: dns.message.Message, query: dns.message.Message, zone: Zone) -> None:
    if query.edns > 0:
        response.set_rcode(dns.rcode.BADVERS)
        return
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
        return
    if len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
        return
    question = query.question[0]
    name, rdtype = question.name, question.rdtype
    if question.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY) or not name.is_subdomain(
        zone.origin
    ):
        response.set_rcode(dns.rcode.REFUSED)
        return
    response.flags |= dns.flags.AA
    addresses = zone.records.get(name)
    if addresses is not None and rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        response.answer.append(_a_rrset(name, addresses, zone.ttl))
        return
    if name == zone.origin and rdtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
        response.answer.append(zone.soa)
        return
    known = addresses is not None or name == zone.origin or name in zone.interior
    if not known:
        response.set_rcode(dns.rcode.NXDOMAIN)
    response.authority.append(zone.soa)


def _a_rrset(name: dns.name.Name, addresses: tuple[IPv4Address, ...], ttl: int) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.A)
    for address in addresses:
        rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, str(address)), ttl)
    return rrset


def _soa_rrset(origin: dns.name.Name, ttl: int) -> dns.rrset.RRset:
    # Serial and timers matter little: nothing transfers this zone; `minimum` caps
    # how long resolvers cache a miss.
    domain = origin.to_text()
    text = f"ns.dns.{domain} hostmaster.{domain} 1 7200 1800 86400 {ttl}"
    rrset = dns.rrset.RRset(origin, dns.rdataclass.IN, dns.rdatatype.SOA)
    rrset.add(dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, text), ttl)
    return rrset


def _to_wire(response: dns.message.Message, query: dns.message.Message, *, udp: bool) -> bytes:
    limit = 65535
    if udp:
        limit = min(max(query.payload, UDP_PLAIN_LIMIT), UDP_EDNS_CAP) if query.edns >= 0 else 512
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        # Too big for UDP: say so (TC) and let the client retry over TCP.
        response.answer.clear()
        response.authority.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def _format_error(query: bytes) -> bytes | None:
    """FORMERR with the query's ID and opcode, no sections: all we can trust of a bad query."""
    ident, flags = struct.unpack_from("!HH", query)
    if flags & dns.flags.QR:
        return None
    opcode_bits = flags & 0x7800
    return struct.pack("!HHHHHH", ident, 0x8000 | opcode_bits | dns.rcode.FORMERR, 0, 0, 0, 0)
