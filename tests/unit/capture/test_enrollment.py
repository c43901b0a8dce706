"""The enrollment predicate (reference 2.7), as a table."""

from __future__ import annotations

import pytest

from ambientmesh.capture.enrollment import EnrollmentFacts, enrollment, is_captured

AMBIENT = {"istio.io/dataplane-mode": "ambient"}
NONE = {"istio.io/dataplane-mode": "none"}
SIDECAR = {"sidecar.istio.io/status": '{"containers":["istio-proxy"]}'}


def pod(namespace: str = "web", **kwargs: object) -> EnrollmentFacts:
    return EnrollmentFacts(namespace=namespace, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "captured", "reason"),
    [
        (pod(namespace_labels=AMBIENT), True, "namespace label"),
        (pod(pod_labels=AMBIENT), True, "pod label"),
        (pod(), False, "neither"),
        (pod(namespace_labels={"istio.io/dataplane-mode": "sidecar"}), False, "neither"),
        # `none` on the pod opts out of an ambient namespace; waypoint pods carry it.
        (pod(namespace_labels=AMBIENT, pod_labels=NONE), False, "=none"),
        (pod(pod_labels={**NONE, "gateway.istio.io/managed": "x"}), False, "=none"),
        # Sidecar-injected pods are never captured, even when labelled.
        (pod(pod_labels=AMBIENT, pod_annotations=SIDECAR), False, "sidecar"),
        (pod(namespace_labels=AMBIENT, pod_annotations=SIDECAR), False, "sidecar"),
        # Excluded namespaces win over every label.
        (pod("kube-system", pod_labels=AMBIENT), False, "excluded"),
        (pod("kube-system", namespace_labels=AMBIENT), False, "excluded"),
        (pod(pod_labels=AMBIENT, host_network=True), False, "host network"),
        # Other values of the label neither enroll nor opt out.
        (
            pod(namespace_labels=AMBIENT, pod_labels={"istio.io/dataplane-mode": "x"}),
            True,
            "namespace",
        ),
    ],
)
def test_enrollment_matches_istio_node_agent(
    facts: EnrollmentFacts, captured: bool, reason: str
) -> None:
    decision = enrollment(facts)
    assert decision.captured is captured
    assert reason in decision.reason


def test_excluded_namespaces_are_configurable() -> None:
    facts = EnrollmentFacts(namespace="kube-system", pod_labels=AMBIENT)
    assert is_captured(facts, excluded_namespaces=frozenset())
    other = EnrollmentFacts(namespace="infra", namespace_labels=AMBIENT)
    assert not is_captured(other, excluded_namespaces=frozenset({"infra"}))
