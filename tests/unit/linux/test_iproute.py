"""iproute2 operations render to the `ip -batch` lines they mean."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.linux.iproute import (
    AddAddress,
    AddRoute,
    AddVeth,
    DeleteLink,
    IpArgs,
    LinkUp,
    failed_line,
    parse_json_list,
    render_batch,
)


def test_each_operation_renders_one_line() -> None:
    text = render_batch(
        [
            AddVeth(name="am0123456789", peer="eth0", peer_netns="am-x.node-1"),
            LinkUp(dev="eth0"),
            AddAddress(dev="eth0", address=IPv4Interface("10.244.1.2/32")),
            AddRoute(
                destination=IPv4Network("10.244.0.0/16"),
                via=IPv4Address("10.244.1.1"),
                dev="eth0",
                onlink=True,
            ),
            AddRoute(type="unreachable", destination=IPv4Network("10.96.0.0/16")),
            AddRoute(
                destination=IPv4Network("10.244.1.2/32"),
                dev="am1",
                scope="link",
                src=IPv4Address("10.96.0.10"),
            ),
            AddRoute(type="local", destination=IPv4Network("0.0.0.0/0"), dev="lo", table=100),
            DeleteLink(dev="am1"),
            IpArgs(words=("rule", "add", "fwmark", "0x111/0xfff", "lookup", "100")),
        ]
    )
    assert text.splitlines() == [
        "link add am0123456789 type veth peer name eth0 netns am-x.node-1",
        "link set dev eth0 up",
        "address add 10.244.1.2/32 dev eth0",
        "route add 10.244.0.0/16 via 10.244.1.1 dev eth0 onlink",
        "route add unreachable 10.96.0.0/16",
        "route add 10.244.1.2/32 dev am1 src 10.96.0.10 scope link",
        "route add local 0.0.0.0/0 dev lo table 100",
        "link delete dev am1",
        "rule add fwmark 0x111/0xfff lookup 100",
    ]


@pytest.mark.parametrize("bad", ["", "two words", "a#b", 'q"uote', "line\nbreak"])
def test_arguments_that_would_change_the_batch_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="unsafe"):
        render_batch([LinkUp(dev=bad)])


def test_failed_line_is_read_from_stderr() -> None:
    assert failed_line('Cannot find device "nope"\nCommand failed -:2\n') == 2
    assert failed_line("something else") is None


def test_json_output_is_parsed_and_empty_output_is_empty() -> None:
    assert parse_json_list('[{"ifname": "lo"}]') == [{"ifname": "lo"}]
    assert parse_json_list("\n") == []
    with pytest.raises(InvalidInput):
        parse_json_list('{"ifname": "lo"}')
