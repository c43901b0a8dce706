"""nftables: apply rulesets atomically with `nft -f -`; replace, delete and list whole tables."""

from __future__ import annotations

import json
from typing import Literal

from ambientmesh.errors import InvalidInput
from ambientmesh.linux import commands

Family = Literal["ip", "ip6", "inet", "arp", "bridge", "netdev"]
FAMILIES: frozenset[str] = frozenset(("ip", "ip6", "inet", "arp", "bridge", "netdev"))


async def apply(ruleset: str, *, netns: str | None = None) -> None:
    """Load `ruleset` (nft syntax) in one transaction: all of it takes effect, or none."""
    await commands.run(["nft", "-f", "-"], stdin=ruleset, netns_name=netns)


def replacing(family: Family, table: str, definition: str) -> str:
    """A script that swaps `table` for `definition` (a full `table ... { }` block) atomically.

    Creating the table first makes the delete valid whether or not it existed.
    """
    return f"table {family} {table}\ndelete table {family} {table}\n{definition}"


async def replace_table(
    family: Family, table: str, definition: str, *, netns: str | None = None
) -> None:
    await apply(replacing(family, table, definition), netns=netns)


async def delete_table(family: Family, table: str, *, netns: str | None = None) -> None:
    """Remove `table` if it exists; safe to call twice."""
    await apply(f"table {family} {table}\ndelete table {family} {table}\n", netns=netns)


async def tables(*, netns: str | None = None) -> list[tuple[str, str]]:
    """(family, name) of every table in the namespace."""
    output = await commands.run(["nft", "-j", "list", "tables"], netns_name=netns)
    return parse_tables(output)


async def list_table(family: Family, table: str, *, netns: str | None = None) -> str:
    return await commands.run(["nft", "list", "table", family, table], netns_name=netns)


def parse_tables(output: str) -> list[tuple[str, str]]:
    """Parse `nft -j list tables`."""
    try:
        document = json.loads(output)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"nft printed invalid JSON: {exc}") from exc
    found = []
    for item in document.get("nftables", []):
        table = item.get("table")
        if isinstance(table, dict):
            found.append((str(table["family"]), str(table["name"])))
    return found
