"""Kubernetes' own JSON schemas for the core kinds, loaded once, as strict validators.

The schemas ship with the ``kubernetes-validate`` package (generated from the Kubernetes
OpenAPI documents; the ``-strict`` variant forbids unknown fields). We read them straight from
the package with ``importlib.resources`` and build each ``jsonschema`` validator once, because
``kubernetes_validate.validate()`` re-reads and re-parses 1.8 MB of definitions on every call.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from ambientmesh.resources.issues import FieldIssue, field, index, invalid, key, wrong_type

_PACKAGE = "kubernetes_validate"
_ROOT = "kubernetes-json-schema"
_STRICT = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local-strict$")
_LOCK = threading.Lock()


@cache
def schema_version() -> str:
    """The newest strict schema set shipped, e.g. ``v1.37.0-local-strict``."""
    base = resources.files(_PACKAGE).joinpath(_ROOT)
    found = []
    for entry in base.iterdir():
        match = _STRICT.match(entry.name)
        if match:
            found.append((tuple(int(part) for part in match.groups()), entry.name))
    if not found:
        raise RuntimeError("kubernetes-validate ships no strict schemas")
    return max(found)[1]


def _read(name: str) -> dict[str, Any]:
    path = resources.files(_PACKAGE).joinpath(_ROOT, schema_version(), name)
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@cache
def _definitions() -> dict[str, Any]:
    defs: dict[str, Any] = _read("_definitions.json")["$defs"]
    return defs


def _file_name(group: str, version: str, kind: str) -> str:
    # kubernetes-validate names files <kind>-<group's first label>-<version>.json.
    if not group:
        return f"{kind.lower()}-{version}.json"
    return f"{kind.lower()}-{group.split('.', 1)[0]}-{version}.json"


# Keywords whose value maps names to subschemas, holds one subschema, or lists subschemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


class _Inliner:
    """Replaces every ``$ref`` with the definition itself and drops descriptions.

    Following a ``$ref`` through ``referencing`` costs about a quarter of the validation time;
    shared definition objects (cycles included) cost nothing. Definitions are inlined once each.
    """

    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.done: dict[str, dict[str, Any]] = {}

    def schema(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self.definition(ref.rsplit("/", 1)[-1])
            rest = {name: value for name, value in node.items() if name != "$ref"}
            rest = self.schema(rest)
            return {"allOf": [target], **rest} if rest else target
        result: dict[str, Any] = {}
        for name, value in node.items():
            if name == "description" or name.startswith("x-"):
                continue  # annotations: they validate nothing
            if name in _SCHEMA_MAPS and isinstance(value, dict):
                result[name] = {key: self.schema(item) for key, item in value.items()}
            elif name in _SCHEMA_ONE:
                result[name] = self.schema(value)
            elif name in _SCHEMA_LISTS and isinstance(value, list):
                result[name] = [self.schema(item) for item in value]
            else:
                result[name] = value
        return result

    def definition(self, name: str) -> dict[str, Any]:
        found = self.done.get(name)
        if found is None:
            found = self.done[name] = {}  # registered first, so a cycle finds it
            found.update(self.schema(self.definitions[name]))
        return found


@cache
def _validator(group: str, version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = _Inliner(_definitions()).schema(_read(_file_name(group, version, kind)))
    return jsonschema.Draft202012Validator(schema)


def validator(group: str, version: str, kind: str) -> jsonschema.Draft202012Validator:
    """The cached validator for one kind; loading is serialised so it happens once."""
    with _LOCK:
        return _validator(group, version, kind)


def check(obj: Mapping[str, Any], group: str, version: str, kind: str) -> list[FieldIssue]:
    """Structural problems in ``obj`` (metadata excluded: the envelope check owns it)."""
    body = {name: value for name, value in obj.items() if name != "metadata"}
    issues: list[FieldIssue] = []
    for error in validator(group, version, kind).iter_errors(body):
        issues.extend(_convert(error))
    return issues


def _path(error: jsonschema.ValidationError) -> str:
    """The instance path, with map entries as ``[key]``: the schema path tells fields from keys."""
    instance = list(error.absolute_path)
    keywords = list(error.absolute_schema_path)
    path = ""
    at = 0
    step = 0
    while step < len(keywords) and at < len(instance):
        keyword = keywords[step]
        part = instance[at]
        if keyword == "properties":
            path, at, step = field(path, str(part)), at + 1, step + 2
        elif keyword == "additionalProperties":
            path, at, step = key(path, str(part)), at + 1, step + 1
        elif keyword == "items" and isinstance(part, int):
            path, at, step = index(path, part), at + 1, step + 1
        elif keyword in ("allOf", "anyOf", "oneOf"):
            step += 2
        else:
            step += 1
    for part in instance[at:]:
        path = index(path, part) if isinstance(part, int) else field(path, str(part))
    return path


def _convert(error: jsonschema.ValidationError) -> list[FieldIssue]:
    path = _path(error)
    rule = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    expected = error.validator_value if isinstance(error.validator_value, list) else []
    if rule == "additionalProperties" and isinstance(value, Mapping):
        known = schema.get("properties", {})
        return [
            FieldIssue(path=field(path, name), message=f'unknown field "{name}"')
            for name in value
            if name not in known
        ]
    if rule == "required" and isinstance(value, Mapping):
        missing = [name for name in expected if name not in value]
        return [FieldIssue(path=field(path, name), message="required value") for name in missing]
    if rule in ("type", "oneOf", "anyOf"):
        return [FieldIssue(path=path, message=wrong_type(_expected(schema), value))]
    if rule == "enum":
        allowed = ", ".join(json.dumps(item) for item in expected)
        return [FieldIssue(path=path, message=invalid(value, f"must be one of {allowed}"))]
    return [FieldIssue(path=path, message=error.message)]


_NAMES = {
    "integer": "integer",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "array": "list",
    "object": "object",
}


def _expected(schema: Mapping[str, Any]) -> str:
    """What a schema accepts, in words: ``integer or string`` for IntOrString."""
    names: list[str] = []
    options = schema.get("oneOf") or schema.get("anyOf") or [schema]
    for option in options:
        declared = option.get("type", [])
        for item in [declared] if isinstance(declared, str) else declared:
            if item != "null" and _NAMES.get(item, item) not in names:
                names.append(_NAMES.get(item, item))
    return " or ".join(names) or "a different type"
