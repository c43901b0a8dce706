"""The pod-namespace capture ruleset and policy routing, as data (reference 2.7); pure, no I/O.

`capture_plan(settings)` says *what* must hold inside an enrolled pod's network namespace;
`render_nft` turns it into one nftables transaction and `RouteRule`/`LocalRoute` into iproute2
arguments. `ambientmesh.capture.apply` installs the result. Table names and rule order follow
Istio's native-nftables mode, so `nft list ruleset` in a pod reads like it does under Istio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ambientmesh.capture.settings import CaptureSettings

NAT_TABLE = "istio-ambient-nat"
MANGLE_TABLE = "istio-ambient-mangle"
TABLE_NAMES = (NAT_TABLE, MANGLE_TABLE)

Family = Literal["ip", "ip6"]
IpVersion = Literal[4, 6]
LOOPBACK: dict[Family, str] = {"ip": "127.0.0.1/32", "ip6": "::1/128"}


# ---------------------------------------------------------------- matches


@dataclass(frozen=True, slots=True, kw_only=True)
class L4Proto:
    proto: Literal["tcp", "udp"] = "tcp"

    def render(self) -> str:
        return f"meta l4proto {self.proto}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddrMatch:
    family: Family
    field: Literal["saddr", "daddr"]
    prefix: str
    negate: bool = False

    def render(self) -> str:
        return f"{self.family} {self.field} {_op(self.negate)}{self.prefix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DPortMatch:
    port: int
    negate: bool = False

    def render(self) -> str:
        return f"tcp dport {_op(self.negate)}{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkMatch:
    """The packet's mark, under a mask: ztunnel's sockets carry SO_MARK 0x539."""

    value: int
    mask: int
    negate: bool = False

    def render(self) -> str:
        return f"meta mark & {self.mask:#x} {'!=' if self.negate else '=='} {self.value:#x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CtMarkMatch:
    value: int
    mask: int

    def render(self) -> str:
        return f"ct mark & {self.mask:#x} == {self.value:#x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class OifMatch:
    name: str
    negate: bool = False

    def render(self) -> str:
        return f'oifname {_op(self.negate)}"{self.name}"'


Match = L4Proto | AddrMatch | DPortMatch | MarkMatch | CtMarkMatch | OifMatch


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    def render(self) -> str:
        return "accept"


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    port: int

    def render(self) -> str:
        return f"redirect to :{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetConnmark:
    """Set our bits of the connection mark, keeping bits outside the mask as they were."""

    value: int
    mask: int

    def render(self) -> str:
        keep = ~self.mask & 0xFFFFFFFF
        return f"ct mark set ct mark & {keep:#010x} | {self.value:#x}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreMark:
    def render(self) -> str:
        return "meta mark set ct mark"


Action = Accept | Redirect | SetConnmark | RestoreMark


# ---------------------------------------------------------------- structure


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    matches: tuple[Match, ...]
    action: Action
    comment: str

    def render(self) -> str:
        parts = [m.render() for m in self.matches]
        parts += ["counter", self.action.render(), f'comment "{self.comment}"']
        return " ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    name: str
    kind: Literal["nat", "filter", "route"]
    hook: Literal["prerouting", "output"]
    priority: int
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """An `inet` table: one set of chains serves IPv4 and IPv6."""

    name: str
    chains: tuple[Chain, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    """`ip rule`: packets whose mark matches are looked up in `table`."""

    version: IpVersion
    priority: int
    fwmark: int
    mask: int
    table: int

    def add_args(self) -> list[str]:
        return [f"-{self.version}", "rule", "add", *self._selector()]

    def delete_args(self) -> list[str]:
        return [f"-{self.version}", "rule", "del", *self._selector()]

    def _selector(self) -> list[str]:
        mark = f"{self.fwmark:#x}/{self.mask:#x}"
        return ["pref", str(self.priority), "fwmark", mark, "lookup", str(self.table)]


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalRoute:
    """`local <any> dev lo` in our table: matching packets are delivered to a local socket."""

    version: IpVersion
    table: int
    destination: str
    device: str = "lo"

    def replace_args(self) -> list[str]:
        return [f"-{self.version}", "route", "replace", *self._selector()]

    def delete_args(self) -> list[str]:
        return [f"-{self.version}", "route", "del", *self._selector()]

    def _selector(self) -> list[str]:
        return ["local", self.destination, "dev", self.device, "table", str(self.table)]


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturePlan:
    """Everything capture installs in one pod network namespace."""

    tables: tuple[Table, ...]
    route_rules: tuple[RouteRule, ...]
    routes: tuple[LocalRoute, ...]


# ---------------------------------------------------------------- the plan


def capture_plan(settings: CaptureSettings | None = None) -> CapturePlan:
    """The rules and routes for one enrolled pod, per reference 2.7's table."""
    s = settings or CaptureSettings()
    families: tuple[Family, ...] = ("ip", "ip6") if s.ipv6 else ("ip",)
    versions: tuple[IpVersion, ...] = (4, 6) if s.ipv6 else (4,)
    nat = Table(
        name=NAT_TABLE,
        chains=(
            Chain(
                name="prerouting",
                kind="nat",
                hook="prerouting",
                priority=-100,
                rules=_nat_prerouting(s, families),
            ),
            Chain(
                name="output",
                kind="nat",
                hook="output",
                priority=-100,
                rules=_nat_output(s, families),
            ),
        ),
    )
    mangle = Table(name=MANGLE_TABLE, chains=_mangle_chains(s))
    rules = tuple(
        RouteRule(
            version=v,
            priority=s.rule_priority,
            fwmark=s.spoofed_connmark,
            mask=s.mark_mask,
            table=s.route_table,
        )
        for v in versions
    )
    routes = tuple(
        LocalRoute(version=v, table=s.route_table, destination="0.0.0.0/0" if v == 4 else "::/0")
        for v in versions
    )
    return CapturePlan(tables=(nat, mangle), route_rules=rules, routes=routes)


def _probe(s: CaptureSettings, family: Family) -> str:
    return s.probe_ipv4 if family == "ip" else s.probe_ipv6


def _not_ztunnel(s: CaptureSettings) -> MarkMatch:
    return MarkMatch(value=s.ztunnel_mark, mask=s.mark_mask, negate=True)


def _nat_prerouting(s: CaptureSettings, families: tuple[Family, ...]) -> tuple[Rule, ...]:
    rules = [
        Rule(
            matches=(L4Proto(), AddrMatch(family=f, field="saddr", prefix=_probe(s, f))),
            action=Accept(),
            comment="kubelet probes bypass capture",
        )
        for f in families
    ]
    if s.inbound_capture:
        rules += [
            Rule(
                matches=(
                    AddrMatch(family=f, field="daddr", prefix=LOOPBACK[f], negate=True),
                    DPortMatch(port=s.inbound_hbone_port, negate=True),
                    _not_ztunnel(s),
                ),
                action=Redirect(port=s.inbound_plaintext_port),
                comment="inbound plaintext to ztunnel",
            )
            for f in families
        ]
    return tuple(rules)


def _nat_output(s: CaptureSettings, families: tuple[Family, ...]) -> tuple[Rule, ...]:
    rules = [
        Rule(
            matches=(L4Proto(), AddrMatch(family=f, field="daddr", prefix=_probe(s, f))),
            action=Accept(),
            comment="replies to kubelet probes",
        )
        for f in families
    ]
    rules.append(
        Rule(
            matches=(L4Proto(), MarkMatch(value=s.spoofed_connmark, mask=s.mark_mask)),
            action=Accept(),
            comment="replies on connections ztunnel opened with a spoofed source",
        )
    )
    rules += [
        Rule(
            matches=(
                OifMatch(name="lo"),
                AddrMatch(family=f, field="daddr", prefix=LOOPBACK[f], negate=True),
            ),
            action=Accept(),
            comment="a pod calling its own IP is not captured",
        )
        for f in families
    ]
    rules += [
        Rule(
            matches=(
                L4Proto(),
                AddrMatch(family=f, field="daddr", prefix=LOOPBACK[f], negate=True),
                _not_ztunnel(s),
            ),
            action=Redirect(port=s.outbound_port),
            comment="outbound to ztunnel",
        )
        for f in families
    ]
    return tuple(rules)


def _mangle_chains(s: CaptureSettings) -> tuple[Chain, ...]:
    remember = Rule(
        matches=(MarkMatch(value=s.ztunnel_mark, mask=s.mark_mask),),
        action=SetConnmark(value=s.spoofed_connmark, mask=s.mark_mask),
        comment="remember connections ztunnel opened to this pod",
    )
    restore = Rule(
        matches=(CtMarkMatch(value=s.spoofed_connmark, mask=s.mark_mask),),
        action=RestoreMark(),
        comment="mark replies so policy routing returns them to ztunnel",
    )
    return (
        Chain(
            name="prerouting", kind="filter", hook="prerouting", priority=-150, rules=(remember,)
        ),
        # A `route` chain makes the kernel re-route a packet whose mark it changed.
        Chain(name="output", kind="route", hook="output", priority=-150, rules=(restore,)),
    )


# ---------------------------------------------------------------- rendering


def render_nft(plan: CapturePlan) -> str:
    """One `nft -f` transaction that replaces our tables whole: applied fully or not at all."""
    lines: list[str] = []
    for table in plan.tables:
        # Declaring then deleting makes the delete succeed whether or not the table existed.
        lines += [f"table inet {table.name}", f"delete table inet {table.name}"]
        lines.append(f"table inet {table.name} {{")
        for chain in table.chains:
            lines.append(f"\tchain {chain.name} {{")
            lines.append(
                f"\t\ttype {chain.kind} hook {chain.hook} priority {chain.priority}; policy accept;"
            )
            lines += [f"\t\t{rule.render()}" for rule in chain.rules]
            lines.append("\t}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def render_nft_removal(table_names: tuple[str, ...] = TABLE_NAMES) -> str:
    """One transaction that deletes our tables; succeeds when they are already gone."""
    lines: list[str] = []
    for name in table_names:
        lines += [f"table inet {name}", f"delete table inet {name}"]
    return "\n".join(lines) + "\n"


def _op(negate: bool) -> str:
    return "!= " if negate else ""
