"""Loading manifests: files, directories, stdin, multi-document YAML, JSON, lists and errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ambientmesh.errors import InvalidInput, ValidationFailed
from ambientmesh.resources.loader import (
    Document,
    load_paths,
    parse_text,
    prepare,
    validate_documents,
)

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
SA = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_multi_document_yaml_skips_empty_documents_and_keeps_indexes(tmp_path: Path) -> None:
    text = NAMESPACE.format(name="a") + "---\n---\n# only a comment\n---\n" + SA.format(name="b")
    documents = load_paths([write(tmp_path / "m.yaml", text)])
    assert [(d.index, d.obj["metadata"]["name"]) for d in documents] == [(0, "a"), (3, "b")]
    assert documents[0].source == str(tmp_path / "m.yaml")


def test_directory_is_read_sorted_by_name_and_only_manifests(tmp_path: Path) -> None:
    write(tmp_path / "b.yml", SA.format(name="second"))
    write(tmp_path / "a.yaml", SA.format(name="first"))
    write(
        tmp_path / "c.json",
        '{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "third"}}',
    )
    write(tmp_path / "notes.txt", "not yaml: [")
    write(tmp_path / "sub" / "d.yaml", SA.format(name="nested"))
    names = [d.obj["metadata"]["name"] for d in load_paths([tmp_path])]
    assert names == ["first", "second", "third"]
    recursive = [d.obj["metadata"]["name"] for d in load_paths([tmp_path], recursive=True)]
    assert recursive == ["first", "second", "third", "nested"]


def test_stdin_is_read_for_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(SA.format(name="piped")))
    (document,) = load_paths(["-"])
    assert document.source == "<stdin>"
    assert document.obj["metadata"]["name"] == "piped"


def test_kind_list_expands_into_its_items() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- "
        + SA.format(name="a").replace("\n", "\n  ")
        + "\n- "
        + SA.format(name="b").replace("\n", "\n  ")
    )
    documents = parse_text(text, "list.yaml")
    assert [d.obj["metadata"]["name"] for d in documents] == ["a", "b"]
    assert all(d.index == 0 for d in documents)


def test_yaml_values_become_json_values_as_kubernetes_reads_them() -> None:
    text = (
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: a\n"
        "  creationTimestamp: 2024-01-02T03:04:05Z\n  labels:\n    version: '1'\n"
        "spec:\n  selector:\n    matchLabels: {app: a}\n"
        "  portLevelMtls:\n    8080: {mode: STRICT}\n"
    )
    (document,) = parse_text(text, "pa.yaml")
    assert document.obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert list(document.obj["spec"]["portLevelMtls"]) == ["8080"]


def test_syntax_error_names_file_document_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.yaml", NAMESPACE.format(name="ok") + "---\nkind: Pod\nspec: a: b\n"
    )
    with pytest.raises(InvalidInput) as failure:
        load_paths([path])
    assert failure.value.message.startswith(
        f"{path}: document 1: line 7, column 8: mapping values are not allowed here"
    )


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '{\n  "kind": "Pod",\n  "metadata": {"name": }\n}\n')
    with pytest.raises(
        InvalidInput, match=r"bad.json: document 0: line 3, column 24: Expecting value"
    ):
        load_paths([path])


def test_duplicate_keys_are_an_error_as_in_strict_kubectl() -> None:
    with pytest.raises(
        InvalidInput, match=r'm.yaml: document 0: line 4, column 3: duplicate key "name"'
    ):
        parse_text("kind: Namespace\nmetadata:\n  name: a\n  name: b\n", "m.yaml")


def test_non_object_document_is_rejected() -> None:
    with pytest.raises(
        InvalidInput, match="document 1: expected an object with apiVersion and kind, got a list"
    ):
        parse_text(NAMESPACE.format(name="a") + "---\n- a\n- b\n", "m.yaml")


def test_every_bad_file_is_reported_together(tmp_path: Path) -> None:
    first = write(tmp_path / "one.yaml", "a: [\n")
    second = write(tmp_path / "two.yaml", "b: {\n")
    with pytest.raises(InvalidInput) as failure:
        load_paths([first, second, tmp_path / "missing.yaml"])
    lines = failure.value.message.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{first}: document 0: line 2")
    assert lines[1].startswith(f"{second}: document 0: line 2")
    assert lines[2] == f'the path "{tmp_path / "missing.yaml"}" does not exist'


def test_validation_failed_lists_every_issue_of_every_document() -> None:
    documents = [
        Document(
            source="a.yaml",
            index=0,
            obj={
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "Bad", "nmae": 1},
            },
        ),
        Document(
            source="a.yaml",
            index=1,
            obj={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "good"}},
        ),
        Document(
            source="b.yaml",
            index=0,
            obj={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"ports": [{"port": 0}]},
            },
        ),
    ]
    with pytest.raises(ValidationFailed) as failure:
        validate_documents(documents)
    assert list(failure.value.issues) == [
        'a.yaml: document 0 (ServiceAccount Bad): metadata.nmae: unknown field "nmae"',
        'a.yaml: document 0 (ServiceAccount Bad): metadata.name: invalid value "Bad": must be a '
        "lowercase RFC 1123 subdomain: lowercase letters, digits, '-' and '.', starting and "
        "ending with a letter or digit",
        "b.yaml: document 0 (Service shop/web): spec.ports[0].port: invalid value 0: must be "
        "between 1 and 65535, inclusive",
    ]
    assert str(failure.value) == "\n".join(failure.value.issues)


def test_describe() -> None:
    assert (
        Document(
            source="s",
            index=0,
            obj={"kind": "Pod", "metadata": {"name": "web", "namespace": "default"}},
        ).describe()
        == "Pod default/web"
    )
    assert (
        Document(
            source="s", index=0, obj={"kind": "Namespace", "metadata": {"name": "prod"}}
        ).describe()
        == "Namespace prod"
    )
    assert Document(source="s", index=0, obj={"metadata": 3}).describe() == "object (unnamed)"


def test_prepare_sets_namespace_for_namespaced_kinds_only() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}
    prepared = prepare(pod, default_namespace="shop")
    assert prepared["metadata"]["namespace"] == "shop"
    assert "namespace" not in pod["metadata"]  # the input is left alone
    kept = prepare(
        {**pod, "metadata": {"name": "a", "namespace": "other"}}, default_namespace="shop"
    )
    assert kept["metadata"]["namespace"] == "other"
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "a", "namespace": "x"},
    }
    assert "namespace" not in prepare(namespace, default_namespace="shop")["metadata"]
    with pytest.raises(InvalidInput):
        prepare({"apiVersion": "v1", "kind": "Widget"}, default_namespace="shop")
