"""nftables helpers that need no kernel: table replacement scripts and `nft -j` parsing."""

from __future__ import annotations

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.linux.nftables import parse_tables, replacing
from ambientmesh.linux.sysctl import proc_path


def test_replacing_creates_then_deletes_then_defines_in_one_script() -> None:
    script = replacing("ip", "t", "table ip t {\n}\n")
    assert script.splitlines() == ["table ip t", "delete table ip t", "table ip t {", "}"]


def test_tables_are_read_from_json() -> None:
    output = (
        '{"nftables": [{"metainfo": {"version": "1.0.6"}},'
        ' {"table": {"family": "ip", "name": "ambientmesh-proxy", "handle": 1}},'
        ' {"table": {"family": "inet", "name": "other", "handle": 2}}]}'
    )
    assert parse_tables(output) == [("ip", "ambientmesh-proxy"), ("inet", "other")]
    with pytest.raises(InvalidInput):
        parse_tables("not json")


def test_sysctl_names_map_to_proc_and_odd_names_are_refused() -> None:
    assert (
        str(proc_path("net.ipv4.conf.all.forwarding")) == "/proc/sys/net/ipv4/conf/all/forwarding"
    )
    for bad in ("net", "net..x", "net.ipv4/../../etc", "/etc/passwd"):
        with pytest.raises(InvalidInput):
            proc_path(bad)
