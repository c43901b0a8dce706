"""The pod-namespace ruleset and policy routing as data (reference 2.7), checked without root."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from ambientmesh.capture.rules import (
    MANGLE_TABLE,
    NAT_TABLE,
    Accept,
    AddrMatch,
    Chain,
    CtMarkMatch,
    DPortMatch,
    L4Proto,
    LocalRoute,
    MarkMatch,
    OifMatch,
    Redirect,
    RestoreMark,
    RouteRule,
    SetConnmark,
    capture_plan,
    render_nft,
    render_nft_removal,
)
from ambientmesh.capture.settings import CaptureSettings
from ambientmesh.errors import InvalidInput

# The IPv4 half of the rendered ruleset, exactly. Order is Istio's native-nftables golden.
GOLDEN_IPV4 = "\n".join(
    [
        "table inet istio-ambient-nat",
        "delete table inet istio-ambient-nat",
        "table inet istio-ambient-nat {",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority -100; policy accept;",
        "\t\tmeta l4proto tcp ip saddr 169.254.7.127 counter accept"
        ' comment "kubelet probes bypass capture"',
        "\t\tip daddr != 127.0.0.1/32 tcp dport != 15008 meta mark & 0xfff != 0x539"
        ' counter redirect to :15006 comment "inbound plaintext to ztunnel"',
        "\t}",
        "\tchain output {",
        "\t\ttype nat hook output priority -100; policy accept;",
        "\t\tmeta l4proto tcp ip daddr 169.254.7.127 counter accept"
        ' comment "replies to kubelet probes"',
        "\t\tmeta l4proto tcp meta mark & 0xfff == 0x111 counter accept"
        ' comment "replies on connections ztunnel opened with a spoofed source"',
        '\t\toifname "lo" ip daddr != 127.0.0.1/32 counter accept'
        ' comment "a pod calling its own IP is not captured"',
        "\t\tmeta l4proto tcp ip daddr != 127.0.0.1/32 meta mark & 0xfff != 0x539"
        ' counter redirect to :15001 comment "outbound to ztunnel"',
        "\t}",
        "}",
        "table inet istio-ambient-mangle",
        "delete table inet istio-ambient-mangle",
        "table inet istio-ambient-mangle {",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority -150; policy accept;",
        "\t\tmeta mark & 0xfff == 0x539 counter ct mark set ct mark & 0xfffff000 | 0x111"
        ' comment "remember connections ztunnel opened to this pod"',
        "\t}",
        "\tchain output {",
        "\t\ttype route hook output priority -150; policy accept;",
        "\t\tct mark & 0xfff == 0x111 counter meta mark set ct mark"
        ' comment "mark replies so policy routing returns them to ztunnel"',
        "\t}",
        "}",
        "",
    ]
)


def test_ipv4_ruleset_renders_exactly_like_istios_table() -> None:
    assert render_nft(capture_plan(CaptureSettings(ipv6=False))) == GOLDEN_IPV4


def test_ipv6_mirrors_every_address_rule_with_loopback_and_probe_v6() -> None:
    text = render_nft(capture_plan())
    for line in (
        "meta l4proto tcp ip6 saddr fd16:9254:7127:1337:ffff:ffff:ffff:ffff counter accept",
        "ip6 daddr != ::1/128 tcp dport != 15008 meta mark & 0xfff != 0x539 counter"
        " redirect to :15006",
        'oifname "lo" ip6 daddr != ::1/128 counter accept',
        "meta l4proto tcp ip6 daddr != ::1/128 meta mark & 0xfff != 0x539 counter"
        " redirect to :15001",
    ):
        assert line in text
    v4_lines = [ln for ln in text.splitlines() if " ip " in f" {ln.strip()} "]
    v6_lines = [ln for ln in text.splitlines() if " ip6 " in f" {ln.strip()} "]
    assert len(v4_lines) == len(v6_lines) == 5


def test_policy_routing_sends_connmarked_replies_to_local_delivery() -> None:
    plan = capture_plan()
    assert plan.route_rules == (
        RouteRule(version=4, priority=32764, fwmark=0x111, mask=0xFFF, table=100),
        RouteRule(version=6, priority=32764, fwmark=0x111, mask=0xFFF, table=100),
    )
    assert plan.routes == (
        LocalRoute(version=4, table=100, destination="0.0.0.0/0"),
        LocalRoute(version=6, table=100, destination="::/0"),
    )
    assert plan.route_rules[0].add_args() == [
        "-4", "rule", "add", "pref", "32764", "fwmark", "0x111/0xfff", "lookup", "100",
    ]  # fmt: skip
    assert plan.routes[1].replace_args() == [
        "-6",
        "route",
        "replace",
        "local",
        "::/0",
        "dev",
        "lo",
        "table",
        "100",
    ]


def test_ipv4_only_plan_has_no_ipv6_anything() -> None:
    plan = capture_plan(CaptureSettings(ipv6=False))
    assert [r.version for r in plan.route_rules] == [4]
    assert [r.version for r in plan.routes] == [4]
    assert "ip6" not in render_nft(plan)


def test_bypass_inbound_capture_drops_only_the_15006_redirect() -> None:
    with_inbound = render_nft(capture_plan())
    without = render_nft(capture_plan(CaptureSettings(inbound_capture=False)))
    assert "redirect to :15006" in with_inbound
    assert "redirect to :15006" not in without
    assert without.count("redirect to :15001") == 2


def test_removal_deletes_both_tables_even_if_absent() -> None:
    assert render_nft_removal() == (
        f"table inet {NAT_TABLE}\ndelete table inet {NAT_TABLE}\n"
        f"table inet {MANGLE_TABLE}\ndelete table inet {MANGLE_TABLE}\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"outbound_port": 0}, "outside 1-65535"),
        ({"inbound_plaintext_port": 15001}, "must differ"),
        ({"ztunnel_mark": 0x1539}, "inside mask"),
        ({"spoofed_connmark": 0x539}, "must differ"),
        ({"route_table": 254}, "reserved"),
        ({"rule_priority": 40000}, "1-32765"),
        ({"probe_ipv4": "fd00::1"}, "not an IPv4"),
        ({"probe_ipv6": "nonsense"}, "not an IP address"),
    ],
)
def test_settings_reject_values_that_would_break_capture(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        CaptureSettings(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------ behaviour, by evaluating the rules as data


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet:
    """The first packet of a TCP connection as the nat chains see it."""

    src: str
    dst: str
    dport: int
    mark: int = 0
    oif: str = "eth0"


def first_verdict(chain: Chain, packet: Packet) -> object | None:
    """The action of the first rule whose matches all hold (None: falls through, accepted)."""
    for rule in chain.rules:
        if all(_holds(match, packet) for match in rule.matches):
            return rule.action
    return None


def _holds(match: object, p: Packet) -> bool:
    match match:
        case L4Proto(proto=proto):
            return proto == "tcp"
        case AddrMatch(family=family, field=field, prefix=prefix, negate=negate):
            address = ipaddress.ip_address(p.src if field == "saddr" else p.dst)
            if (address.version == 4) != (family == "ip"):
                return False  # an `ip` match never holds for an IPv6 packet, and vice versa
            return (address in ipaddress.ip_network(prefix)) != negate
        case DPortMatch(port=port, negate=negate):
            return (p.dport == port) != negate
        case MarkMatch(value=value, mask=mask, negate=negate):
            return ((p.mark & mask) == value) != negate
        case OifMatch(name=name, negate=negate):
            return (p.oif == name) != negate
    raise AssertionError(f"unexpected match {match!r}")


def _chain(hook: str) -> Chain:
    nat = capture_plan().tables[0]
    return next(c for c in nat.chains if c.hook == hook)


POD, PEER = "10.244.1.5", "10.244.2.9"


@pytest.mark.parametrize(
    ("packet", "verdict"),
    [
        (Packet(src=POD, dst=PEER, dport=80), Redirect(port=15001)),
        (Packet(src=POD, dst="10.96.0.10", dport=443), Redirect(port=15001)),
        (Packet(src="fd00::5", dst="fd00::9", dport=80), Redirect(port=15001)),
        (Packet(src=POD, dst=PEER, dport=80, mark=0x539), None),
        (Packet(src=POD, dst=PEER, dport=80, mark=0xF539), None),  # only the masked bits count
        (Packet(src=POD, dst="127.0.0.1", dport=80, oif="lo"), None),
        (Packet(src=POD, dst=POD, dport=8080, oif="lo"), Accept()),
        (Packet(src=POD, dst="169.254.7.127", dport=41000), Accept()),
        (Packet(src=PEER, dst=PEER, dport=80, mark=0x111), Accept()),
    ],
)
def test_outbound_decisions(packet: Packet, verdict: object) -> None:
    assert first_verdict(_chain("output"), packet) == verdict


@pytest.mark.parametrize(
    ("packet", "verdict"),
    [
        (Packet(src=PEER, dst=POD, dport=8080), Redirect(port=15006)),
        (Packet(src=PEER, dst=POD, dport=15001), Redirect(port=15006)),
        (Packet(src=PEER, dst=POD, dport=15008), None),
        (Packet(src=PEER, dst=POD, dport=8080, mark=0x539), None),
        (Packet(src="169.254.7.127", dst=POD, dport=8080), Accept()),
        (
            Packet(src="fd16:9254:7127:1337:ffff:ffff:ffff:ffff", dst="fd00::5", dport=8080),
            Accept(),
        ),
        (Packet(src="fd00::9", dst="fd00::5", dport=8080), Redirect(port=15006)),
    ],
)
def test_inbound_decisions(packet: Packet, verdict: object) -> None:
    assert first_verdict(_chain("prerouting"), packet) == verdict


def test_mangle_remembers_ztunnel_connections_and_restores_the_mark_on_replies() -> None:
    mangle = capture_plan().tables[1]
    prerouting, output = mangle.chains
    assert prerouting.rules[0].matches == (MarkMatch(value=0x539, mask=0xFFF),)
    assert prerouting.rules[0].action == SetConnmark(value=0x111, mask=0xFFF)
    assert output.kind == "route"  # so the restored mark re-routes the reply
    assert output.rules[0].matches == (CtMarkMatch(value=0x111, mask=0xFFF),)
    assert output.rules[0].action == RestoreMark()
