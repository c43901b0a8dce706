"""Telling a network namespace fd from any other fd (what ztunnel checks on every ZDS add)."""

from __future__ import annotations

import os

import pytest

from ambientmesh.capture.errors import NotANetworkNamespace
from ambientmesh.capture.netns_fd import NetnsFd, check_netns_fd


def test_own_network_namespace_is_accepted_and_identified() -> None:
    with NetnsFd.open("/proc/self/ns/net") as ns:
        st = os.stat("/proc/self/ns/net")
        assert ns.identity == (st.st_dev, st.st_ino)
    assert ns.closed


def test_other_namespace_kinds_and_plain_files_are_refused() -> None:
    with pytest.raises(NotANetworkNamespace, match="not a network namespace"):
        NetnsFd.open("/proc/self/ns/uts")
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(NotANetworkNamespace, match="not a namespace file"):
            check_netns_fd(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_missing_path_is_refused_with_its_name() -> None:
    with pytest.raises(NotANetworkNamespace, match="/run/netns/does-not-exist-here"):
        NetnsFd.open("/run/netns/does-not-exist-here")
