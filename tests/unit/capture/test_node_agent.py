"""The node agent's decisions and their order, with the kernel and ztunnel replaced by fakes."""

from __future__ import annotations

import pytest

from ambientmesh.capture.errors import CaptureFailed, WorkloadRejected
from ambientmesh.capture.node_agent import NodeAgent, PodFacts
from ambientmesh.capture.settings import CaptureSettings
from ambientmesh.capture.zds_server import ZdsPod
from ambientmesh.errors import MeshError, Unavailable, UpstreamTimeout

AMBIENT = {"istio.io/dataplane-mode": "ambient"}
ENABLED = {"ambient.istio.io/redirection": "enabled"}


class World:
    """Fake installer and ztunnel link writing to one journal, so order can be checked."""

    def __init__(self) -> None:
        self.journal: list[tuple[str, str]] = []
        self.install_error: MeshError | None = None
        self.add_error: MeshError | None = None
        self.delete_error: MeshError | None = None

    async def install(self, netns: str, settings: CaptureSettings) -> None:
        if self.install_error is not None:
            raise self.install_error
        self.journal.append(("install", netns))

    async def remove(self, netns: str, settings: CaptureSettings) -> None:
        self.journal.append(("remove", netns))

    async def add(self, pod: ZdsPod) -> None:
        if self.add_error is not None:
            raise self.add_error
        self.journal.append(("add", f"{pod.uid}@{pod.netns_path}"))

    async def delete(self, uid: str) -> None:
        self.journal.append(("delete", uid))
        if self.delete_error is not None:
            raise self.delete_error


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def agent(world: World) -> NodeAgent:
    return NodeAgent(node="node-1", ztunnel=world, installer=world)


def pod(
    uid: str = "u1", *, netns: str = "pod-a", labels: dict[str, str] | None = None, **extra: object
) -> PodFacts:
    return PodFacts(
        uid=uid,
        name=f"web-{uid}",
        namespace="shop",
        netns=netns,
        labels=labels or {},
        **extra,  # type: ignore[arg-type]
    )


async def test_enrolls_rules_first_then_ztunnel_and_says_what_to_record(
    agent: NodeAgent, world: World
) -> None:
    outcome = await agent.pod_changed(pod(), AMBIENT)
    assert world.journal == [("install", "pod-a"), ("add", "u1@/run/netns/pod-a")]
    assert outcome.captured
    assert outcome.ztunnel == "acked"
    assert outcome.annotations == ENABLED
    assert [p.uid for p in agent.snapshot()] == ["u1"]


async def test_unchanged_pod_is_not_reinstalled(agent: NodeAgent, world: World) -> None:
    await agent.pod_changed(pod(), AMBIENT)
    again = await agent.pod_changed(pod(), AMBIENT)
    assert again.captured
    assert again.ztunnel == "acked"
    assert len(world.journal) == 2


async def test_no_ztunnel_yet_means_queued_for_the_snapshot(agent: NodeAgent, world: World) -> None:
    world.add_error = Unavailable("no ztunnel is connected")
    outcome = await agent.pod_changed(pod(), AMBIENT)
    assert outcome.captured
    assert outcome.ztunnel == "queued"
    assert outcome.error == ""
    assert [p.uid for p in agent.snapshot()] == ["u1"]


async def test_ztunnel_refusal_is_a_partial_add_that_a_later_call_retries(
    agent: NodeAgent, world: World
) -> None:
    """Istio's partial add: rules are in, the pod is recorded as captured, the caller retries."""
    world.add_error = WorkloadRejected("ztunnel refused AddWorkload: bind failed")
    outcome = await agent.pod_changed(pod(), AMBIENT)
    assert outcome.captured
    assert outcome.ztunnel == "failed"
    assert "bind failed" in outcome.error
    assert outcome.annotations == ENABLED
    world.add_error = None
    retried = await agent.pod_changed(pod(), AMBIENT)
    assert retried.ztunnel == "acked"
    assert world.journal[-1] == ("add", "u1@/run/netns/pod-a")


async def test_failed_install_changes_nothing(agent: NodeAgent, world: World) -> None:
    world.install_error = CaptureFailed("nft said no")
    with pytest.raises(CaptureFailed):
        await agent.pod_changed(pod(), AMBIENT)
    assert world.journal == []
    assert agent.snapshot() == []


async def test_removing_the_label_uncaptures_rules_first_then_ztunnel(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod(labels=AMBIENT), {})
    outcome = await agent.pod_changed(pod(labels={}, annotations=ENABLED), {})
    assert world.journal[2:] == [("remove", "pod-a"), ("delete", "u1")]
    assert not outcome.captured
    assert outcome.annotations == {"ambient.istio.io/redirection": None}
    assert agent.snapshot() == []


async def test_opt_out_label_on_a_pod_in_an_ambient_namespace_uncaptures(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod(), AMBIENT)
    outcome = await agent.pod_changed(pod(labels={"istio.io/dataplane-mode": "none"}), AMBIENT)
    assert not outcome.captured
    assert "=none" in outcome.reason
    assert ("remove", "pod-a") in world.journal


async def test_annotated_pod_unknown_to_a_restarted_agent_still_gets_rules_removed(
    agent: NodeAgent, world: World
) -> None:
    outcome = await agent.pod_changed(pod(annotations=ENABLED), {})
    assert world.journal == [("remove", "pod-a")]
    assert outcome.annotations == {"ambient.istio.io/redirection": None}


async def test_never_captured_pod_needs_nothing(agent: NodeAgent, world: World) -> None:
    outcome = await agent.pod_changed(pod(), {})
    assert not outcome.captured
    assert outcome.annotations == {}
    assert world.journal == []


async def test_ztunnel_delete_failure_does_not_block_uncapture(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod(), AMBIENT)
    world.delete_error = UpstreamTimeout("ztunnel did not answer")
    outcome = await agent.pod_changed(pod(), {})
    assert not outcome.captured
    assert agent.snapshot() == []


async def test_deleted_pod_is_forgotten_without_touching_rules(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod(), AMBIENT)
    await agent.pod_deleted("u1")
    await agent.pod_deleted("u1")
    assert world.journal[2:] == [("delete", "u1")]


async def test_recreated_sandbox_is_captured_again_in_its_new_namespace(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod(), AMBIENT)
    await agent.pod_changed(pod(netns="/proc/4242/ns/net"), AMBIENT)
    assert world.journal[2:] == [("install", "/proc/4242/ns/net"), ("add", "u1@/proc/4242/ns/net")]


async def test_reconcile_brings_the_node_to_exactly_the_listed_pods(
    agent: NodeAgent, world: World
) -> None:
    await agent.pod_changed(pod("gone"), AMBIENT)
    results = await agent.reconcile([(pod("u1"), AMBIENT), (pod("u2"), {})])
    assert [r.captured for r in results] == [True, False]
    assert set(agent.enrolled) == {"u1"}
    assert ("delete", "gone") in world.journal


async def test_sidecar_pods_and_excluded_namespaces_are_left_alone(world: World) -> None:
    agent = NodeAgent(
        node="n", ztunnel=world, installer=world, excluded_namespaces=frozenset({"shop"})
    )
    outcome = await agent.pod_changed(pod(), AMBIENT)
    assert not outcome.captured
    assert "excluded" in outcome.reason
    assert world.journal == []


def test_agent_needs_exactly_one_way_to_reach_ztunnel(world: World) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        NodeAgent(node="n", installer=world)
