"""Where pods go: Kubernetes' filters (Ready, schedulable, nodeSelector), then spreading."""

from __future__ import annotations

from ambientmesh.runtime.scheduler import (
    Bound,
    NodeFacts,
    Placement,
    PodFacts,
    Unschedulable,
    schedule,
)

NODES = [
    NodeFacts(name="node-2", labels={"kubernetes.io/hostname": "node-2", "disk": "ssd"}),
    NodeFacts(name="node-1", labels={"kubernetes.io/hostname": "node-1"}),
]


def test_an_empty_node_set_fits_nothing() -> None:
    decision = schedule(PodFacts(), [], [])
    assert isinstance(decision, Unschedulable)
    assert decision.reason == "Unschedulable"


def test_ties_go_to_the_first_node_by_name() -> None:
    assert schedule(PodFacts(), NODES, []) == Bound(node="node-1")


def test_spreads_by_pods_per_node() -> None:
    placed = [Placement(node="node-1")]
    assert schedule(PodFacts(), NODES, placed) == Bound(node="node-2")


def test_siblings_of_the_same_owner_spread_before_total_load() -> None:
    # node-2 is busier overall, but node-1 already runs a replica of this Deployment.
    placed = [
        Placement(node="node-1", owner_uid="web"),
        Placement(node="node-2", owner_uid="other"),
        Placement(node="node-2", owner_uid="other"),
    ]
    assert schedule(PodFacts(owner_uid="web"), NODES, placed) == Bound(node="node-2")


def test_node_selector_must_match_every_label() -> None:
    pod = PodFacts(node_selector={"disk": "ssd"})
    assert schedule(pod, NODES, [Placement(node="node-2")] * 5) == Bound(node="node-2")


def test_no_matching_node_says_why_as_kubernetes_does() -> None:
    decision = schedule(PodFacts(node_selector={"disk": "nvme"}), NODES, [])
    assert decision == Unschedulable(
        message="0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )


def test_not_ready_and_cordoned_nodes_are_skipped_with_reasons() -> None:
    nodes = [
        NodeFacts(name="a", ready=False),
        NodeFacts(name="b", unschedulable=True),
        NodeFacts(name="c", labels={"x": "1"}),
    ]
    decision = schedule(PodFacts(node_selector={"x": "2"}), nodes, [])
    assert isinstance(decision, Unschedulable)
    assert decision.message == (
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were not ready, 1 node(s) were unschedulable."
    )
    assert schedule(PodFacts(), nodes, []) == Bound(node="c")
