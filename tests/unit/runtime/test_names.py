"""Namespace and interface names: unique per cluster, unambiguous, within kernel limits."""

from __future__ import annotations

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime import names


def test_names_follow_the_documented_scheme() -> None:
    assert names.router_netns("demo") == "am-demo"
    assert names.node_netns("demo", "node-1") == "am-demo.node-1"
    assert names.pod_netns("demo", "default", "echo-7d9f.x") == "am-demo.default.echo-7d9f.x"


def test_clusters_whose_names_share_a_prefix_do_not_share_namespaces() -> None:
    mine = [names.router_netns("a"), names.node_netns("a", "b-node-1")]
    theirs = [names.router_netns("a-b"), names.node_netns("a-b", "node-1")]
    assert not set(mine) & set(theirs)
    assert not any(names.owns_netns("a", name) for name in theirs)
    assert all(names.owns_netns("a", name) for name in mine)


def test_node_and_pod_names_cannot_collide() -> None:
    # A node is one label after the cluster; a pod is always namespace.pod.
    assert names.node_netns("c", "x") != names.pod_netns("c", "x", "y")


@pytest.mark.parametrize("bad", ["", "UPPER", "has.dot", "-lead", "trail-", "x" * 41, "sp ace"])
def test_bad_cluster_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="cluster name"):
        names.router_netns(bad)


def test_bad_node_namespace_and_pod_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="node"):
        names.node_netns("c", "a.b")
    with pytest.raises(InvalidInput, match="namespace"):
        names.pod_netns("c", "Ns", "p")
    with pytest.raises(InvalidInput, match="pod"):
        names.pod_netns("c", "ns", "p/../x")


def test_very_long_pod_names_stay_within_limits_and_unique() -> None:
    long_a = "a" * 250 + "x"
    long_b = "a" * 250 + "y"
    first, second = names.pod_netns("c", "ns", long_a), names.pod_netns("c", "ns", long_b)
    assert len(first) <= 240
    assert len(second) <= 240
    assert first != second
    assert names.owns_netns("c", first)


def test_link_names_fit_ifnamsiz_and_differ_per_peer() -> None:
    one, two = names.link_name("am-c.ns.p1"), names.link_name("am-c.ns.p2")
    assert len(one) <= 15
    assert one.startswith("am")
    assert one != two
