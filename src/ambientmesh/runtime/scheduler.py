"""Which node a pod runs on; pure.

Filters as Kubernetes' scheduler does for the features the local runtime has: the node must be
Ready, schedulable and carry every label of the pod's `nodeSelector`. Among the nodes left it
spreads: fewest pods of the same owner first (so a Deployment's replicas land on different
nodes), then fewest pods overall, then the name. A pod that names its node (`spec.nodeName`)
never comes here, as in Kubernetes: the kubelet of that node takes it directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    unschedulable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFacts:
    """A pod waiting for a node, and the pods already placed (owner uid per node)."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    owner_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """One pod that already occupies a node."""

    node: str
    owner_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unschedulable:
    """Kubernetes' PodScheduled=False condition: reason `Unschedulable` and why."""

    message: str
    reason: str = "Unschedulable"


Decision = Bound | Unschedulable


def schedule(pod: PodFacts, nodes: Iterable[NodeFacts], placed: Iterable[Placement]) -> Decision:
    """Pick a node for `pod`, or say why none fits (in the words `kubectl describe` uses)."""
    candidates = sorted(nodes, key=lambda node: node.name)
    if not candidates:
        return Unschedulable(message="0/0 nodes are available: no nodes registered.")
    rejected: dict[str, int] = {}
    fitting = []
    for node in candidates:
        problem = _misfit(pod, node)
        if problem is None:
            fitting.append(node)
        else:
            rejected[problem] = rejected.get(problem, 0) + 1
    if not fitting:
        reasons = ", ".join(f"{count} {why}" for why, count in sorted(rejected.items()))
        return Unschedulable(message=f"0/{len(candidates)} nodes are available: {reasons}.")
    siblings: dict[str, int] = {}
    totals: dict[str, int] = {}
    for placement in placed:
        totals[placement.node] = totals.get(placement.node, 0) + 1
        if pod.owner_uid is not None and placement.owner_uid == pod.owner_uid:
            siblings[placement.node] = siblings.get(placement.node, 0) + 1
    best = min(
        fitting, key=lambda node: (siblings.get(node.name, 0), totals.get(node.name, 0), node.name)
    )
    return Bound(node=best.name)


def _misfit(pod: PodFacts, node: NodeFacts) -> str | None:
    if not node.ready:
        return "node(s) were not ready"
    if node.unschedulable:
        return "node(s) were unschedulable"
    if any(node.labels.get(key) != value for key, value in pod.node_selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    return None
