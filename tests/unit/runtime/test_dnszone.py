"""Answering DNS queries from the cluster zone; bytes in, bytes out."""

from __future__ import annotations

from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.dnszone import Zone, answer, build_zone, service_fqdn

ZONE = build_zone(
    "cluster.local",
    {
        service_fqdn("echo", "default", "cluster.local"): [IPv4Address("10.96.0.20")],
        "many.default.svc.cluster.local": [IPv4Address(f"10.244.1.{i}") for i in range(2, 100)],
    },
)


def ask(
    name: str, rdtype: str = "A", *, zone: Zone = ZONE, udp: bool = True, **options: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **options)  # type: ignore[arg-type]
    wire = answer(query.to_wire(), zone, udp=udp)
    assert wire is not None
    return dns.message.from_wire(wire)


def test_service_name_gets_its_address_authoritatively() -> None:
    response = ask("echo.default.svc.cluster.local")
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert response.flags & dns.flags.QR
    assert not response.flags & dns.flags.RA  # no recursion here
    [rrset] = response.answer
    assert [r.address for r in rrset] == ["10.96.0.20"]
    assert rrset.ttl == 5


def test_names_match_without_regard_to_case() -> None:
    [rrset] = ask("ECHO.Default.svc.cluster.local").answer
    assert rrset.name.to_text() == "ECHO.Default.svc.cluster.local."  # as asked


def test_unknown_names_in_the_domain_are_nxdomain_with_the_soa() -> None:
    response = ask("nope.default.svc.cluster.local")
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.authority[0].rdtype == dns.rdatatype.SOA
    assert response.authority[0][0].minimum == 5


def test_other_types_and_empty_non_terminals_are_nodata() -> None:
    for name, rdtype in (
        ("echo.default.svc.cluster.local", "AAAA"),
        ("default.svc.cluster.local", "A"),
    ):
        response = ask(name, rdtype)
        assert (response.rcode(), response.answer) == (dns.rcode.NOERROR, [])
        assert response.authority[0].rdtype == dns.rdatatype.SOA


def test_the_zone_apex_answers_its_soa() -> None:
    response = ask("cluster.local", "SOA")
    assert response.answer[0].rdtype == dns.rdatatype.SOA


def test_names_outside_the_domain_are_refused_never_forwarded() -> None:
    for name in ("example.com", "cluster.local.evil.com", "local"):
        response = ask(name)
        assert (response.rcode(), response.answer) == (dns.rcode.REFUSED, [])


def test_large_answers_are_truncated_over_udp_and_whole_over_tcp() -> None:
    assert ask("many.default.svc.cluster.local").flags & dns.flags.TC
    assert len(ask("many.default.svc.cluster.local", udp=False).answer[0]) == 98
    # With EDNS and a big enough buffer it fits in UDP.
    big = ask("many.default.svc.cluster.local", use_edns=0, payload=4096)
    assert not big.flags & dns.flags.TC
    assert len(big.answer[0]) == 98


def test_malformed_and_unusual_messages() -> None:
    assert answer(b"\x00\x01", ZONE, udp=True) is None  # not even a header
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff"
    formerr = dns.message.from_wire(answer(garbage, ZONE, udp=True) or b"")
    assert (formerr.id, formerr.rcode()) == (0x1234, dns.rcode.FORMERR)
    response = dns.message.make_response(
        dns.message.make_query("echo.default.svc.cluster.local", "A")
    )
    assert answer(response.to_wire(), ZONE, udp=True) is None  # never answer an answer
    notify = dns.message.make_query("cluster.local", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    assert (
        dns.message.from_wire(answer(notify.to_wire(), ZONE, udp=True) or b"").rcode()
        == dns.rcode.NOTIMP
    )
    chaos = dns.message.make_query("version.bind", "TXT", rdclass="CH")
    assert (
        dns.message.from_wire(answer(chaos.to_wire(), ZONE, udp=True) or b"").rcode()
        == dns.rcode.REFUSED
    )


def test_records_outside_the_domain_are_refused_when_building() -> None:
    with pytest.raises(InvalidInput, match="not inside the cluster domain"):
        build_zone("cluster.local", {"echo.example.com": [IPv4Address("10.96.0.1")]})
    with pytest.raises(InvalidInput, match="not inside"):
        build_zone("cluster.local", {"cluster.local": [IPv4Address("10.96.0.1")]})
