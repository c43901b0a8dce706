"""Links, addresses, routes and rules as typed operations, applied by one `ip -batch` per netns.

Why iproute2 and not a netlink library: measured on the target machine, building one pod's
network took 5.3 ms with three `ip -batch` runs and 4.4 ms with pyroute2 0.9; the small gain
did not pay for an untyped dependency whose synchronous API cannot run on an event loop's
thread. Each batch is one process and stops at the first failing line, which we name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any, Literal

from ambientmesh.errors import InvalidInput
from ambientmesh.linux import commands
from ambientmesh.linux.errors import CommandFailed

RouteType = Literal["unicast", "unreachable", "blackhole", "prohibit", "local"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AddVeth:
    """A veth pair: `name` here, `peer` in `peer_netns` (or here when None)."""

    name: str
    peer: str
    peer_netns: str | None = None

    def args(self) -> tuple[str, ...]:
        where = ("netns", self.peer_netns) if self.peer_netns else ()
        return ("link", "add", self.name, "type", "veth", "peer", "name", self.peer, *where)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkUp:
    dev: str

    def args(self) -> tuple[str, ...]:
        return ("link", "set", "dev", self.dev, "up")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteLink:
    dev: str

    def args(self) -> tuple[str, ...]:
        return ("link", "delete", "dev", self.dev)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddAddress:
    dev: str
    address: IPv4Interface

    def args(self) -> tuple[str, ...]:
        return ("address", "add", str(self.address), "dev", self.dev)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddRoute:
    """`ip route add [TYPE] DST [via GW] [dev DEV] [onlink] [src SRC] [scope S] [table T]`."""

    destination: IPv4Network
    type: RouteType = "unicast"
    via: IPv4Address | None = None
    dev: str | None = None
    onlink: bool = False
    src: IPv4Address | None = None
    scope: Literal["link", "host", "global"] | None = None
    table: int | None = None

    def args(self) -> tuple[str, ...]:
        words = ["route", "add"]
        if self.type != "unicast":
            words.append(self.type)
        words.append(str(self.destination))
        if self.via is not None:
            words += ["via", str(self.via)]
        if self.dev is not None:
            words += ["dev", self.dev]
        if self.onlink:
            words.append("onlink")
        if self.src is not None:
            words += ["src", str(self.src)]
        if self.scope is not None:
            words += ["scope", self.scope]
        if self.table is not None:
            words += ["table", str(self.table)]
        return tuple(words)


@dataclass(frozen=True, slots=True, kw_only=True)
class IpArgs:
    """Any other `ip` command, as its words (e.g. `rule add fwmark 0x111/0xfff lookup 100`)."""

    words: tuple[str, ...]

    def args(self) -> tuple[str, ...]:
        return self.words


Operation = AddVeth | LinkUp | DeleteLink | AddAddress | AddRoute | IpArgs

_WORD = re.compile(r"[^\s#\"'\\]+")


def render_batch(operations: Sequence[Operation]) -> str:
    """The `ip -batch` text for `operations`, one command a line."""
    lines = []
    for operation in operations:
        words = operation.args()
        for word in words:
            if not _WORD.fullmatch(word):
                raise InvalidInput(f"ip argument {word!r} in {operation!r} is empty or unsafe")
        lines.append(" ".join(words))
    return "".join(line + "\n" for line in lines)


async def apply(operations: Sequence[Operation], *, netns: str | None = None) -> None:
    """Run `operations` in order in `netns` (None: this namespace); stop at the first failure."""
    if not operations:
        return
    argv = ["ip", *(("-n", netns) if netns else ()), "-batch", "-"]
    try:
        await commands.run(argv, stdin=render_batch(operations))
    except CommandFailed as exc:
        failed = failed_line(exc.stderr)
        detail = f" at `ip {' '.join(operations[failed - 1].args())}`" if failed else ""
        where = f"network namespace {netns!r}" if netns else "this network namespace"
        raise CommandFailed(
            f"configuring {where} failed{detail}: {exc.stderr}",
            argv=exc.argv,
            returncode=exc.returncode,
            stderr=exc.stderr,
        ) from exc


def failed_line(stderr: str) -> int | None:
    """The 1-based batch line `ip` reported as failing (`Command failed -:3`), if any."""
    match = re.search(r"Command failed -:(\d+)", stderr)
    return int(match.group(1)) if match else None


async def show(what: Literal["link", "address", "route"], *, netns: str | None = None) -> list[Any]:
    """`ip -json -details <what> show` in `netns`, parsed."""
    argv = ["ip", *(("-n", netns) if netns else ()), "-json", "-details", what, "show"]
    output = await commands.run(argv)
    return parse_json_list(output)


def parse_json_list(output: str) -> list[Any]:
    text = output.strip()
    if not text:
        return []
    parsed = json.loads(text)
    if not isinstance(parsed, list):
        raise InvalidInput("ip -json printed something other than a list")
    return parsed


async def link_names(*, netns: str | None = None) -> list[str]:
    return [str(link["ifname"]) for link in await show("link", netns=netns)]
