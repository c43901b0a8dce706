"""A corpus of invalid documents, one mistake each: each is rejected at the expected field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ambientmesh.errors import ValidationFailed
from ambientmesh.resources.loader import Document, validate_documents
from ambientmesh.resources.validation import validate

CORPUS = Path(__file__).parent / "testdata" / "invalid_corpus.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def test_corpus_is_large_and_every_case_is_a_different_mistake() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) >= 50
    assert len(set(names)) == len(names)
    assert len({(case["path"], case["message"]) for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_invalid_document_is_rejected_at_its_field_path(case: dict[str, Any]) -> None:
    issues = validate(case["object"])
    lines = [str(issue) for issue in issues]
    at_path = [issue for issue in issues if issue.path == case["path"]]
    assert at_path, f"no issue at {case['path']}; got {lines}"
    assert any(case["message"] in issue.message for issue in at_path), lines


@pytest.mark.parametrize("case", CASES[:5], ids=[case["name"] for case in CASES[:5]])
def test_loader_line_names_file_document_object_and_path(case: dict[str, Any]) -> None:
    document = Document(source="bad.yaml", index=3, obj=case["object"])
    with pytest.raises(ValidationFailed) as failure:
        validate_documents([document])
    prefix = f"bad.yaml: document 3 ({document.describe()}): {case['path']}: "
    assert any(line.startswith(prefix) for line in failure.value.issues), failure.value.issues
