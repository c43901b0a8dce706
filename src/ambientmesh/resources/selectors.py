"""Kubernetes label selectors: the string form (``-l a=b,c in (x,y)``) and LabelSelector objects.

Both parse into a :class:`Selector`, a pure matcher over a label mapping. Semantics follow
Kubernetes: ``!=`` and ``notin`` also match objects without the label; an empty selector matches
everything; a missing (null) LabelSelector object matches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ambientmesh.errors import InvalidInput
from ambientmesh.resources import common
from ambientmesh.resources.issues import FieldIssue, describe, field, index, key, wrong_type


class Operator(enum.Enum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return value is not None and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return value is None or value not in self.values
            case Operator.EXISTS:
                return value is not None
            case Operator.DOES_NOT_EXIST:
                return value is None
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                return _compare(self.operator, value, self.values[0])

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator.value} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator.value}{self.values[0]}"


def _compare(operator: Operator, value: str | None, bound: str) -> bool:
    if value is None or not value.lstrip("-").isdigit():
        return False
    return int(value) > int(bound) if operator is Operator.GREATER_THAN else int(value) < int(bound)


@dataclass(frozen=True, slots=True, kw_only=True)
class Selector:
    """Requirements that must all hold. ``nothing`` marks the selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(requirement.matches(labels) for requirement in self.requirements)

    @property
    def empty(self) -> bool:
        """True if this selector matches every object."""
        return not self.nothing and not self.requirements

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


# ----------------------------------------------------------------------------- string form

_SPECIAL = "!=(),<> \t\n"


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    position: int
    special: bool


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif text.startswith(("==", "!="), position):
            tokens.append(_Token(text[position : position + 2], position, True))
            position += 2
        elif char in _SPECIAL:
            tokens.append(_Token(char, position, True))
            position += 1
        else:
            end = position
            while end < len(text) and text[end] not in _SPECIAL:
                end += 1
            tokens.append(_Token(text[position:end], position, False))
            position = end
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.at = 0

    def fail(self, expected: str) -> InvalidInput:
        token = self.peek()
        found = f'"{token.text}" at position {token.position + 1}' if token else "the end"
        return InvalidInput(
            f'invalid label selector "{self.text}": expected {expected}, found {found}'
        )

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token | None:
        token = self.peek()
        self.at += token is not None
        return token

    def is_next(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.special and token.text == text

    def word(self, expected: str) -> str:
        token = self.peek()
        if token is None or token.special:
            raise self.fail(expected)
        self.at += 1
        return token.text

    def selector(self) -> Selector:
        requirements = []
        if not self.tokens:
            return EVERYTHING
        while True:
            requirements.append(self.requirement())
            if self.peek() is None:
                return Selector(requirements=tuple(requirements))
            if not self.is_next(","):
                raise self.fail('"," between requirements')
            self.take()

    def requirement(self) -> Requirement:
        if self.is_next("!"):
            self.take()
            return _requirement(
                self.text, self.word("a label key after '!'"), Operator.DOES_NOT_EXIST
            )
        label = self.word("a label key")
        token = self.peek()
        if token is None or (token.special and token.text == ","):
            return _requirement(self.text, label, Operator.EXISTS)
        if not token.special and token.text in ("in", "notin"):
            self.take()
            operator = Operator.IN if token.text == "in" else Operator.NOT_IN
            return _requirement(self.text, label, operator, self.value_set())
        operators = {
            "=": Operator.EQUALS,
            "==": Operator.EQUALS,
            "!=": Operator.NOT_EQUALS,
            ">": Operator.GREATER_THAN,
            "<": Operator.LESS_THAN,
        }
        if not token.special or token.text not in operators:
            raise self.fail("an operator (=, ==, !=, in, notin, >, <) or ','")
        self.take()
        return _requirement(self.text, label, operators[token.text], (self.single_value(),))

    def single_value(self) -> str:
        token = self.peek()
        if token is None or (token.special and token.text == ","):
            return ""
        return self.word("a label value")

    def value_set(self) -> tuple[str, ...]:
        if not self.is_next("("):
            raise self.fail('"(" to open the value set')
        self.take()
        values: list[str] = []
        while True:
            token = self.peek()
            if token is not None and not token.special:
                values.append(self.word("a value"))
            elif token is not None and token.special and token.text in ",)":
                values.append("")
            else:
                raise self.fail('a value or ")"')
            if self.is_next(")"):
                self.take()
                return tuple(values)
            if not self.is_next(","):
                raise self.fail('"," or ")" in the value set')
            self.take()


def _requirement(
    text: str, label: str, operator: Operator, values: Sequence[str] = ()
) -> Requirement:
    message = common.qualified_name_error(label)
    if message is None and operator in (Operator.IN, Operator.NOT_IN) and values == ("",):
        message = f'the value set for "{label}" must not be empty'
    numeric = operator in (Operator.GREATER_THAN, Operator.LESS_THAN)
    if message is None and numeric and not values[0].lstrip("-").isdigit():
        message = f"{describe(values[0])} is not an integer, as {operator.value} requires"
    for value in values if message is None else ():
        message = common.label_value_error(value)
        if message is not None:
            break
    if message is not None:
        raise InvalidInput(f'invalid label selector "{text}": {message}')
    return Requirement(key=label, operator=operator, values=tuple(values))


def parse_selector(text: str) -> Selector:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h``; InvalidInput says what and where."""
    return _Parser(text).selector()


# ----------------------------------------------------------------------------- object form

_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_match_labels(labels: Mapping[str, str]) -> Selector:
    """Equality on every pair: a Service's ``spec.selector``, Istio's ``matchLabels``."""
    return Selector(
        requirements=tuple(
            Requirement(key=name, operator=Operator.EQUALS, values=(value,))
            for name, value in sorted(labels.items())
        )
    )


def from_label_selector(obj: Mapping[str, Any] | None) -> Selector:
    """A LabelSelector object (``matchLabels`` + ``matchExpressions``); null matches nothing."""
    if obj is None:
        return NOTHING
    problems = label_selector_issues(obj, "selector")
    if problems:
        raise InvalidInput("; ".join(str(problem) for problem in problems))
    requirements = list(from_match_labels(obj.get("matchLabels") or {}).requirements)
    for expression in obj.get("matchExpressions") or ():
        requirements.append(
            Requirement(
                key=expression["key"],
                operator=_EXPRESSION_OPERATORS[expression["operator"]],
                values=tuple(expression.get("values") or ()),
            )
        )
    return Selector(requirements=tuple(requirements))


def label_selector_issues(obj: Any, path: str) -> list[FieldIssue]:
    """Problems in a LabelSelector object, each at its field path."""
    if not isinstance(obj, Mapping):
        return [FieldIssue(path=path, message=wrong_type("object", obj))]
    issues = labels_issues(obj.get("matchLabels"), field(path, "matchLabels"))
    expressions = obj.get("matchExpressions") or []
    if not isinstance(expressions, list):
        return [
            *issues,
            FieldIssue(
                path=field(path, "matchExpressions"), message=wrong_type("list", expressions)
            ),
        ]
    for position, expression in enumerate(expressions):
        where = index(field(path, "matchExpressions"), position)
        issues.extend(_expression_issues(expression, where))
    return issues


def labels_issues(labels: Any, path: str) -> list[FieldIssue]:
    """Problems in a map of label keys to label values."""
    if labels is None:
        return []
    if not isinstance(labels, Mapping):
        return [FieldIssue(path=path, message=wrong_type("object", labels))]
    issues = []
    for name, value in labels.items():
        where = key(path, str(name))
        message = (
            common.qualified_name_error(name) if isinstance(name, str) else "keys must be strings"
        )
        if message is None:
            message = (
                common.label_value_error(value)
                if isinstance(value, str)
                else wrong_type("string", value)
            )
        if message is not None:
            issues.append(FieldIssue(path=where, message=message))
    return issues


def _expression_issues(expression: Any, path: str) -> list[FieldIssue]:
    if not isinstance(expression, Mapping):
        return [FieldIssue(path=path, message=wrong_type("object", expression))]
    issues = []
    label = expression.get("key")
    if not isinstance(label, str) or not label:
        issues.append(FieldIssue(path=field(path, "key"), message="required value"))
    elif (message := common.qualified_name_error(label)) is not None:
        issues.append(FieldIssue(path=field(path, "key"), message=message))
    operator = expression.get("operator")
    values = expression.get("values") or []
    if operator not in _EXPRESSION_OPERATORS:
        allowed = ", ".join(f'"{name}"' for name in _EXPRESSION_OPERATORS)
        issues.append(
            FieldIssue(
                path=field(path, "operator"),
                message=f"unsupported value {describe(operator)}: must be one of {allowed}",
            )
        )
    elif operator in ("In", "NotIn") and not values:
        issues.append(
            FieldIssue(
                path=field(path, "values"), message=f"must be specified when operator is {operator}"
            )
        )
    elif operator in ("Exists", "DoesNotExist") and values:
        issues.append(
            FieldIssue(
                path=field(path, "values"),
                message=f"may not be specified when operator is {operator}",
            )
        )
    for position, value in enumerate(values if isinstance(values, list) else []):
        message = (
            common.label_value_error(value)
            if isinstance(value, str)
            else wrong_type("string", value)
        )
        if message is not None:
            issues.append(FieldIssue(path=index(field(path, "values"), position), message=message))
    return issues
