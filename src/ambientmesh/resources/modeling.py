"""The pydantic base for Istio and Gateway API models, shared field types, and error conversion.

Models are strict (a string where a number belongs is an error), reject unknown fields, and are
frozen. Field rules that concern one value live in the annotated types below, so pydantic
reports them at the exact path; rules across fields live in each model's ``after`` validator,
which raises :class:`SpecIssues` carrying paths relative to that model.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Annotated, Any, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, ValidationError
from pydantic.alias_generators import to_camel

from ambientmesh.resources import common
from ambientmesh.resources.issues import FieldIssue, field, index, invalid, key, wrong_type


class Model(BaseModel):
    """Base of every API model: camelCase aliases, strict types, no unknown fields, frozen."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        strict=True,
        alias_generator=to_camel,
    )


class Invalid(ValueError):
    """A value broke a rule; the message is shown as is, at the value's path."""


class SpecIssues(ValueError):
    """Several rule breaks inside one model, each at a path relative to that model."""

    def __init__(self, issues: Sequence[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in issues))
        self.issues = tuple(issues)


class Problems:
    """Collects cross-field rule breaks inside a model validator, then raises them together."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def check(self, path: str, message: str | None) -> None:
        if message is not None:
            self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecIssues(self.items)


def one_of(problems: Problems, path: str, present: dict[str, bool], *, required: bool) -> None:
    """At most (or, if ``required``, exactly) one of the named fields may be set."""
    chosen = [name for name, is_set in present.items() if is_set]
    names = alternatives(list(present))
    if len(chosen) > 1:
        problems.add(path, f"only one of {names} may be set; got {', '.join(chosen)}")
    elif required and not chosen:
        problems.add(path, f"exactly one of {names} must be set")


def alternatives(names: list[str]) -> str:
    """``a, b or c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# ----------------------------------------------------------------------------- field types


def rule(check: Callable[[Any], str | None]) -> AfterValidator:
    def run(value: Any) -> Any:
        message = check(value)
        if message is not None:
            raise Invalid(message)
        return value

    return AfterValidator(run)


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(wrong_type("number", value))
    return value


def _int_or_string(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid(wrong_type("integer or string", value))
    return value


def _port_key(value: Any) -> int | str:
    """A map key naming a port: YAML gives an int, JSON a digit string."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or common.port_string_error(text) is not None:
        raise Invalid(invalid(value, "must be a port number between 1 and 65535"))
    return value  # type: ignore[no-any-return]


def _at_least(minimum: int) -> Callable[[Any], str | None]:
    return lambda value: invalid(value, f"must be at least {minimum}") if value < minimum else None


def _between(low: float, high: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not low <= value <= high:
            return invalid(value, f"must be between {low:g} and {high:g}, inclusive")
        return None

    return check


def within(low: float, high: float) -> AfterValidator:
    """A rule: the value must lie in ``[low, high]``."""
    return rule(_between(low, high))


Number = Annotated[int | float, PlainValidator(_number)]
Percent = Annotated[int | float, PlainValidator(_number), within(0, 100)]
NonNegative = Annotated[int, rule(_at_least(0))]
Positive = Annotated[int, rule(_at_least(1))]
Port = Annotated[int, rule(common.port_error)]
PortKey = Annotated[int | str, PlainValidator(_port_key)]
PortString = Annotated[str, rule(common.port_string_error)]
IntOrString = Annotated[int | str, PlainValidator(_int_or_string)]
Duration = Annotated[str, rule(common.duration_error)]
DurationOrZero = Annotated[str, rule(lambda v: common.duration_error(v, minimum=0))]
GatewayDuration = Annotated[str, rule(common.gateway_duration_error)]
Regex = Annotated[str, rule(common.regex_error)]
IPAddress = Annotated[str, rule(common.ip_error)]
IPOrCIDR = Annotated[str, rule(common.ip_or_cidr_error)]
CIDR = Annotated[str, rule(common.cidr_error)]
DNSLabel = Annotated[str, rule(common.dns_label_error)]
DNSSubdomain = Annotated[str, rule(common.dns_subdomain_error)]
LabelKey = Annotated[str, rule(common.qualified_name_error)]
LabelValue = Annotated[str, rule(common.label_value_error)]
HeaderName = Annotated[str, rule(common.http_header_name_error)]
NonEmpty = Annotated[str, rule(lambda v: "must not be empty" if not v else None)]
Labels = dict[LabelKey, LabelValue]


# ----------------------------------------------------------------------------- error conversion


def issues_from_error(error: ValidationError, root: type[BaseModel]) -> list[FieldIssue]:
    """Every pydantic error as a FieldIssue with a Kubernetes-style path and a plain message."""
    issues: list[FieldIssue] = []
    for detail in error.errors(include_url=False):
        path = render_loc(root, detail["loc"])
        for sub_path, message in _messages(detail):
            issue = FieldIssue(path=_join(path, sub_path), message=message)
            if issue not in issues:  # union members can report the same problem twice
                issues.append(issue)
    return issues


def _join(path: str, relative: str) -> str:
    if not relative:
        return path
    if relative.startswith("["):
        return path + relative
    return field(path, relative)


def _messages(detail: Any) -> Iterable[tuple[str, str]]:
    kind = detail["type"]
    value = detail.get("input")
    context = detail.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, SpecIssues):
        return cause.issues
    if isinstance(cause, Invalid):
        return [("", str(cause))]
    if kind == "extra_forbidden":
        return [("", f'unknown field "{detail["loc"][-1]}"')]
    return [("", _message(kind, value, context, detail["msg"]))]


_EXPECTED = {
    "string_type": "string",
    "int_type": "integer",
    "int_from_float": "integer",
    "bool_type": "boolean",
    "float_type": "number",
    "list_type": "list",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
}


def _message(kind: str, value: Any, context: dict[str, Any], fallback: str) -> str:
    if kind == "missing":
        return "required value"
    if kind in _EXPECTED:
        return wrong_type(_EXPECTED[kind], value)
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace("'", '"')
        return invalid(value, f"must be one of {expected}")
    if kind == "too_long":
        return f"must have at most {context.get('max_length')} items"
    if kind == "string_too_long":
        return invalid(value, f"must be no more than {context.get('max_length')} characters")
    if kind == "too_short":
        return f"must have at least {context.get('min_length')} items"
    return fallback


def render_loc(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    """``('spec', 'rules', 0, 'from', 0, 'source')`` -> ``spec.rules[0].from[0].source``.

    Walks the model's field types alongside the location so that map keys print as
    ``[key]``, list positions as ``[0]``, and pydantic's union-member tags are dropped.
    """
    path = ""
    current: Any = root
    for item in loc:
        current = _unwrap(current)
        if item == "[key]":
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = _aliases(current)
            path = field(path, str(item))
            current = fields.get(str(item))
        elif get_origin(current) is dict:
            path = key(path, str(item))
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple) or (current is None and isinstance(item, int)):
            path = index(path, int(item))
            current = get_args(current)[0] if current is not None else None
        elif current is None or current is Any:
            path = field(path, str(item))
        # Anything else is a tag pydantic adds for a union member or validator: skip it.
    return path


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            structured = [m for m in members if _is_structured(m)]
            if len(members) == 1:
                annotation = members[0]
            elif len(structured) == 1:
                annotation = structured[0]
            else:
                return annotation
        else:
            return annotation


def _is_structured(annotation: Any) -> bool:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (list, dict, tuple)


@cache
def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        fields[info.alias or name] = info.annotation
    return fields
