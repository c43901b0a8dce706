"""Manifest loading: files, directories and stdin; multi-document YAML, JSON and ``kind: List``.

YAML is read as Kubernetes reads it: timestamps stay strings, map keys become strings (so
``8080:`` and ``"8080":`` agree, as after a JSON round trip), and duplicate keys are an error,
as with ``kubectl apply --validate=strict``. Every syntax error of every file is reported at once.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ambientmesh.errors import InvalidInput, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.resources.validation import validate

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """One object from one manifest: where it came from, and the object itself."""

    source: str
    index: int
    obj: dict[str, Any]

    def describe(self) -> str:
        """``Pod default/web``, ``Namespace prod``; as much as the object says about itself."""
        kind = self.obj.get("kind") if isinstance(self.obj.get("kind"), str) else None
        metadata = self.obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
        namespace = (
            metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None
        )
        what = kind or "object"
        if name and namespace:
            return f"{what} {namespace}/{name}"
        return f"{what} {name}" if name else f"{what} (unnamed)"


# ----------------------------------------------------------------------------- YAML flavour


class _Loader(yaml.SafeLoader):
    """SafeLoader without timestamps, with the '=' value tag, rejecting duplicate keys."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_value(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    # YAML 1.1 gives a bare "=" the value tag; Kubernetes reads it as the string "=".
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        name = loader.construct_object(key_node, deep=True)
        if isinstance(name, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a map key must be a scalar", key_node.start_mark
            )
        text = _key_text(name)
        if text in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f'duplicate key "{text}"', key_node.start_mark
            )
        seen[text] = loader.construct_object(value_node, deep=True)
    return seen


_Loader.add_constructor("tag:yaml.org,2002:value", _construct_value)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _key_text(value: Any) -> str:
    """Map keys as JSON has them: ``8080`` -> ``"8080"``, ``true`` -> ``"true"``."""
    if isinstance(value, str):
        return value
    return (
        json.dumps(value) if value is None or isinstance(value, bool | int | float) else str(value)
    )


def _check_json_values(value: Any, path: str) -> str | None:
    """The first value JSON cannot carry (binary, sets, NaN, ...), with its path, or None."""
    if isinstance(value, dict):
        for name, item in value.items():
            problem = _check_json_values(item, f"{path}.{name}" if path else str(name))
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for position, item in enumerate(value):
            problem = _check_json_values(item, f"{path}[{position}]")
            if problem:
                return problem
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: {value} is not a JSON number"
    if value is None or isinstance(value, str | bool | int | float):
        return None
    return f"{path}: a {type(value).__name__} value cannot be represented in JSON"


# ----------------------------------------------------------------------------- parsing


def parse_text(text: str, source: str) -> list[Document]:
    """All documents in one manifest's text; InvalidInput names the document and line."""
    if source.endswith(".json"):
        return _parse_json(text, source)
    documents: list[Document] = []
    current = 0  # the document being read when an error strikes
    try:
        for position, data in enumerate(yaml.load_all(text, Loader=_Loader)):
            documents.extend(_documents(data, source, position))
            current = position + 1
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise InvalidInput(f"{source}: document {current}: {line}{problem}") from None
    except yaml.YAMLError as error:
        raise InvalidInput(f"{source}: document {current}: invalid YAML: {error}") from None
    return documents


def _parse_json(text: str, source: str) -> list[Document]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in pairs:
            if name in result:
                raise ValueError(f'duplicate key "{name}"')
            result[name] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=unique) if text.strip() else None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"{source}: document 0: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except ValueError as error:
        raise InvalidInput(f"{source}: document 0: {error}") from None
    return _documents(data, source, 0)


def _documents(data: Any, source: str, position: int) -> list[Document]:
    if data is None:
        return []  # an empty document, e.g. between two '---'
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source}: document {position}: expected an object with apiVersion and kind, "
            f"got {'a list' if isinstance(data, list) else type(data).__name__}"
        )
    problem = _check_json_values(data, "")
    if problem:
        raise InvalidInput(f"{source}: document {position}: {problem}")
    if data.get("kind") == "List" and isinstance(data.get("items"), list):
        return [
            Document(source=source, index=position, obj=item)
            for item in _list_items(data["items"], source, position)
        ]
    return [Document(source=source, index=position, obj=data)]


def _list_items(items: list[Any], source: str, position: int) -> Iterator[dict[str, Any]]:
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"{source}: document {position}: items[{number}] is not an object")
        yield item


# ----------------------------------------------------------------------------- paths


def _expand(path: Path, *, recursive: bool) -> list[Path]:
    if not path.is_dir():
        return [path]
    found: list[Path] = []
    for entry in sorted(path.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            if recursive:
                found.extend(_expand(entry, recursive=True))
        elif entry.suffix in MANIFEST_SUFFIXES:
            found.append(entry)
    return found


def _read(path: str | Path) -> tuple[str, str]:
    if str(path) == STDIN:
        return "<stdin>", sys.stdin.read()
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f'the path "{path}" does not exist') from None
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror}") from None


def load_paths(paths: Sequence[str | Path], *, recursive: bool = False) -> list[Document]:
    """Every document in ``paths`` (files, directories, ``-`` for stdin), in order.

    Directories contribute their ``*.yaml``, ``*.yml`` and ``*.json`` files sorted by name
    (subdirectories too when ``recursive``). All unreadable or malformed files are reported
    together in one InvalidInput, one line each.
    """
    documents: list[Document] = []
    problems: list[str] = []
    for given in paths:
        try:
            files = [given] if str(given) == STDIN else _expand(Path(given), recursive=recursive)
            if not files:
                problems.append(
                    f"{given}: no {', '.join('*' + s for s in MANIFEST_SUFFIXES)} files found"
                )
            for file in files:
                source, text = _read(file)
                documents.extend(parse_text(text, source))
        except InvalidInput as error:
            problems.append(error.message)
    if problems:
        raise InvalidInput("\n".join(problems))
    return documents


# ----------------------------------------------------------------------------- validation


def validate_documents(documents: Sequence[Document]) -> None:
    """Raise ValidationFailed listing every issue of every document, one line each."""
    lines = []
    for document in documents:
        for issue in validate(document.obj):
            lines.append(
                f"{document.source}: document {document.index} ({document.describe()}): {issue}"
            )
    if lines:
        raise ValidationFailed(lines)


def prepare(obj: Mapping[str, Any], *, default_namespace: str) -> dict[str, Any]:
    """A copy of ``obj`` ready to store: namespaced kinds get ``default_namespace`` if they have
    none; cluster-scoped kinds lose any namespace (the API server clears it the same way).
    """
    info = kinds.lookup(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    prepared = copy.deepcopy(dict(obj))
    metadata = prepared.setdefault("metadata", {})
    if info.namespaced:
        if not metadata.get("namespace"):
            metadata["namespace"] = default_namespace
    else:
        metadata.pop("namespace", None)
    return prepared
