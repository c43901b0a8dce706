"""Every kind round-trips: load -> validate -> typed view -> JSON equal to the input's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ambientmesh.resources import kinds
from ambientmesh.resources.loader import Document, load_paths, validate_documents
from ambientmesh.resources.typed import model_for, parse
from ambientmesh.resources.validation import validate
from ambientmesh.resources.views import view

VALID = Path(__file__).parent / "testdata" / "valid"
DOCUMENTS = load_paths([VALID])


def _id(document: Document) -> str:
    return f"{document.obj['apiVersion']}/{document.describe()}"


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_every_kind_and_version_family_is_covered() -> None:
    seen = {(kinds.split_api_version(d.obj["apiVersion"])[0], d.obj["kind"]) for d in DOCUMENTS}
    assert seen == {(info.group, info.kind) for info in kinds.ALL_KINDS}
    versions = {d.obj["apiVersion"] for d in DOCUMENTS}
    # Older served versions are exercised too, not only the preferred ones.
    assert {
        "security.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
        "networking.istio.io/v1beta1",
        "gateway.networking.k8s.io/v1beta1",
    } <= versions


def test_the_valid_manifests_pass_as_a_batch() -> None:
    validate_documents(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=_id)
def test_round_trip(document: Document) -> None:
    raw = yaml.safe_load_all(Path(document.source).read_text(encoding="utf-8"))
    original = json.loads(json.dumps([doc for doc in raw if doc][document.index]))
    assert _as_json(document.obj) == _as_json(original)
    assert validate(document.obj) == []
    info = kinds.lookup(document.obj["apiVersion"], document.obj["kind"])
    if model_for(info) is None:
        typed = view(document.obj)
        assert typed.meta.name == document.obj["metadata"]["name"]
        return
    model = parse(document.obj)
    dumped = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert _as_json(dumped) == _as_json(original)
    assert model.model_config["frozen"] is True
