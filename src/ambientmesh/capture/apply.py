"""Install and remove capture inside a pod's network namespace, idempotently and all-or-nothing.

Policy routing goes in first (harmless on its own), then the nftables tables in one atomic
transaction. If that fails on a pod that had no capture, the routing is taken out again, so a
failed install leaves the pod as it was. Removal takes out the tables first (traffic flows
directly from that instant), then the routing. Both are safe to repeat.
"""

from __future__ import annotations

import contextlib
import re

from ambientmesh.capture.errors import CaptureFailed
from ambientmesh.capture.rules import (
    TABLE_NAMES,
    CapturePlan,
    IpVersion,
    capture_plan,
    render_nft,
    render_nft_removal,
)
from ambientmesh.capture.settings import CaptureSettings
from ambientmesh.errors import MeshError
from ambientmesh.linux import commands, nftables, sysctl
from ambientmesh.linux.errors import CommandFailed, LinuxError
from ambientmesh.linux.iproute import IpArgs, render_batch


async def install_capture(netns: str, settings: CaptureSettings | None = None) -> None:
    """Capture the pod whose network namespace is `netns` (a name in /run/netns or a path)."""
    had_rules = False
    plan: CapturePlan | None = None
    try:
        plan = await _plan_for(netns, settings or CaptureSettings())
        await _hand_over_listeners(netns)
        for version in _versions(plan):
            had_rules |= await _install_routing(netns, plan, version)
        await nftables.apply(render_nft(plan), netns=netns)
    except MeshError as exc:
        if plan is not None and not had_rules:
            await _remove_quietly(netns, plan)
        raise CaptureFailed(
            f"installing capture in network namespace {netns} failed: {exc.message}"
        ) from exc


async def remove_capture(netns: str, settings: CaptureSettings | None = None) -> None:
    """Un-capture the pod: traffic flows directly again; running connections are not touched."""
    try:
        plan = await _plan_for(netns, settings or CaptureSettings())
        await nftables.apply(render_nft_removal(), netns=netns)
        for version in _versions(plan):
            await _remove_routing(netns, plan, version)
    except MeshError as exc:
        raise CaptureFailed(
            f"removing capture from network namespace {netns} failed: {exc.message}"
        ) from exc


async def capture_installed(netns: str) -> bool:
    """Whether our nftables tables are present in `netns`."""
    present = {name for family, name in await nftables.tables(netns=netns) if family == "inet"}
    return all(name in present for name in TABLE_NAMES)


async def _hand_over_listeners(netns: str) -> None:
    """Let a closing listener pass the connections it had not accepted yet to a sibling.

    ztunnel's in-pod listeners use SO_REUSEPORT so a restarted ztunnel binds beside the old
    one; when the old one closes its listeners, connections still in their accept queues would
    be reset. With ``tcp_migrate_req`` (Linux 5.14+, per namespace) the kernel moves them to
    the new listener instead. Older kernels keep the reset, so failure here is not fatal.
    """
    with contextlib.suppress(LinuxError):
        await sysctl.write({"net.ipv4.tcp_migrate_req": 1}, netns_name=netns)


# ---------------------------------------------------------------- routing


async def _plan_for(netns: str, settings: CaptureSettings) -> CapturePlan:
    plan = capture_plan(settings)
    if settings.ipv6 and not await _ipv6_enabled(netns):
        # nftables `inet` rules are harmless without IPv6, but v6 routes cannot be added.
        plan = CapturePlan(
            tables=plan.tables,
            route_rules=tuple(r for r in plan.route_rules if r.version == 4),
            routes=tuple(r for r in plan.routes if r.version == 4),
        )
    return plan


async def _ipv6_enabled(netns: str) -> bool:
    try:
        return await sysctl.read("net.ipv6.conf.all.disable_ipv6", netns_name=netns) == "0"
    except LinuxError:
        return False  # no IPv6 in this kernel or namespace


def _versions(plan: CapturePlan) -> tuple[IpVersion, ...]:
    return tuple(sorted({rule.version for rule in plan.route_rules}))


# A line of an `ip -force -batch` run, with the failures that mean "already as wanted".
_Line = tuple[list[str], tuple[str, ...]]
_EXISTS = ("File exists",)
_ABSENT = ("No such file or directory", "No such process", "FIB table does not exist")


async def _install_routing(netns: str, plan: CapturePlan, version: IpVersion) -> bool:
    """Make the rule and route present; True if the rule was already there."""
    lines: list[_Line] = [(["link", "set", "dev", "lo", "up"], ())]
    lines += [(r.replace_args()[1:], ()) for r in plan.routes if r.version == version]
    lines += [(r.add_args()[1:], _EXISTS) for r in plan.route_rules if r.version == version]
    failures = await _batch(netns, version, lines)
    return any(_EXISTS[0] in message for message in failures.values())


async def _remove_routing(netns: str, plan: CapturePlan, version: IpVersion) -> None:
    lines: list[_Line] = [
        (r.delete_args()[1:], _ABSENT) for r in plan.route_rules if r.version == version
    ]
    lines += [(r.delete_args()[1:], _ABSENT) for r in plan.routes if r.version == version]
    await _batch(netns, version, lines)


async def _batch(netns: str, version: IpVersion, lines: list[_Line]) -> dict[int, str]:
    """Run every line (`-force` goes on past failures); raise unless each failure is tolerated.

    One process per IP version: rules take their family from `ip -4`/`-6`, not from a line.
    Returns the tolerated failures by 1-based line number.
    """
    if not lines:
        return {}
    script = render_batch([IpArgs(words=tuple(words)) for words, _ in lines])
    try:
        await commands.run(
            ["ip", f"-{version}", "-force", "-batch", "-"], stdin=script, netns_name=netns
        )
    except CommandFailed as exc:
        failures = batch_failures(exc.stderr)
        if not failures:
            raise
        for number, message in failures.items():
            words, tolerated = lines[number - 1]
            if not any(text in message for text in tolerated):
                raise CaptureFailed(f"`ip -{version} {' '.join(words)}` failed: {message}") from exc
        return failures
    return {}


def batch_failures(stderr: str) -> dict[int, str]:
    """Parse `ip -force -batch` errors: each failing line's message, by 1-based line number."""
    failures: dict[int, str] = {}
    pending: list[str] = []
    for text in stderr.splitlines():
        marker = re.match(r"Command failed \S*?:(\d+)\s*$", text)
        if marker is None:
            pending.append(text.strip())
            continue
        failures[int(marker.group(1))] = " ".join(t for t in pending if t)
        pending = []
    return failures


async def _remove_quietly(netns: str, plan: CapturePlan) -> None:
    # Best effort: the install error is what the caller needs to see.
    with contextlib.suppress(MeshError):
        await nftables.apply(render_nft_removal(), netns=netns)
        for version in _versions(plan):
            await _remove_routing(netns, plan, version)
