"""The bundled examples are valid manifests and runnable by the local runtime."""

from __future__ import annotations

from pathlib import Path

from ambientmesh.resources.loader import load_paths, validate_documents
from ambientmesh.runtime.podplan import DownwardFacts, plan_pod

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FACTS = DownwardFacts(pod_ip="10.244.1.2", host_ip="10.244.1.1", node_name="node-1")


def test_examples_validate_and_every_container_has_a_command() -> None:
    documents = load_paths([EXAMPLES])
    validate_documents(documents)  # raises on any problem
    names = {Path(d.source).name for d in documents}
    assert {"quickstart.yaml", "bookinfo.yaml"} <= names
    for document in documents:
        obj = document.obj
        if obj["kind"] != "Deployment":
            continue
        template = obj["spec"]["template"]
        metadata = {"name": "p", "namespace": obj["metadata"]["namespace"], **template["metadata"]}
        pod = {"metadata": metadata, "spec": template["spec"]}
        plan = plan_pod(pod, FACTS)
        assert all(c.spec is not None for c in plan.containers), document.describe()


def test_example_namespaces_are_in_the_mesh() -> None:
    namespaces = [d.obj for d in load_paths([EXAMPLES]) if d.obj["kind"] == "Namespace"]
    assert {ns["metadata"]["name"] for ns in namespaces} == {"demo", "bookinfo"}
    assert all(
        ns["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient" for ns in namespaces
    )
