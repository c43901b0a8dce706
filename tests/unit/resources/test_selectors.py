"""Label selectors: the string grammar, LabelSelector objects, and Kubernetes' matching rules."""

from __future__ import annotations

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.resources.selectors import (
    NOTHING,
    from_label_selector,
    from_match_labels,
    label_selector_issues,
    parse_selector,
)

LABELS = {"app": "web", "tier": "frontend", "version": "v2", "replicas": "3", "empty": ""}

MATCHES = [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app=api", False),
    ("app!=api", True),
    ("missing!=x", True),  # != also matches objects without the label
    ("app in (web,api)", True),
    ("app in (api)", False),
    ("app notin (api, db)", True),
    ("missing notin (x)", True),
    ("tier", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=frontend,!canary", True),
    ("app=web,tier=backend", False),
    ("  app = web ,  version in ( v1 , v2 )  ", True),
    ("empty=", True),
    ("empty in (,x)", True),
    ("replicas>2", True),
    ("replicas<3", False),
    ("missing>1", False),
    ("example.com/team!=a", True),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES)
def test_selector_matches_like_kubernetes(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


ERRORS = [
    ("app=web,", "expected a label key, found the end"),
    ("app in web", 'expected "(" to open the value set, found "web" at position 8'),
    ("app in (a", "found the end"),
    ("app in ()", 'the value set for "app" must not be empty'),
    ("app web", "expected an operator (=, ==, !=, in, notin, >, <) or ',', found \"web\""),
    ("=web", 'expected a label key, found "=" at position 1'),
    ("-bad=x", 'invalid value "-bad"'),
    ("app=-x-", 'invalid value "-x-"'),
    ("replicas>two", '"two" is not an integer'),
    ("a=b c=d", 'expected "," between requirements, found "c" at position 5'),
]


@pytest.mark.parametrize(("text", "fragment"), ERRORS)
def test_malformed_selectors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as failure:
        parse_selector(text)
    assert failure.value.message.startswith(f'invalid label selector "{text}": ')
    assert fragment in failure.value.message


def test_string_form_renders_canonically() -> None:
    text = "app=web,tier!=db,version in (v1,v2),env notin (dev),ready,!canary"
    assert str(parse_selector(text)) == text
    assert parse_selector("").empty


def test_label_selector_objects() -> None:
    selector = from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "version", "operator": "In", "values": ["v1", "v2"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
            ],
        }
    )
    assert selector.matches(LABELS)
    assert not selector.matches({**LABELS, "canary": "yes"})
    assert not selector.matches({"app": "web"})


def test_null_selector_matches_nothing_and_empty_matches_everything() -> None:
    assert from_label_selector(None) is NOTHING
    assert not NOTHING.matches({})
    assert from_label_selector({}).matches(LABELS)
    assert from_match_labels({}).matches({})


def test_malformed_selector_objects_have_field_paths() -> None:
    issues = label_selector_issues(
        {
            "matchLabels": {"app": "-web"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Equals", "values": ["x"]},
            ],
        },
        "spec.selector",
    )
    assert [issue.path for issue in issues] == [
        "spec.selector.matchLabels[app]",
        "spec.selector.matchExpressions[0].values",
        "spec.selector.matchExpressions[1].values",
        "spec.selector.matchExpressions[2].operator",
    ]
    with pytest.raises(InvalidInput, match=r"selector.matchExpressions\[0\].values"):
        from_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]})
