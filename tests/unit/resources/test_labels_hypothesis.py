"""Label keys and values are classified exactly like a reference regex of Kubernetes' rules."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ambientmesh.resources.common import label_value_error, qualified_name_error

# Reference: the rules written out as one regex each, plus the length limits.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
REFERENCE_KEY = re.compile(rf"((?P<prefix>{_PREFIX})/)?(?P<name>{_NAME})")
REFERENCE_VALUE = re.compile(rf"({_NAME})?")


def reference_key_ok(key: str) -> bool:
    match = REFERENCE_KEY.fullmatch(key)
    if match is None:
        return False
    prefix = match.group("prefix") or ""
    return len(match.group("name")) <= 63 and len(prefix) <= 253


def reference_value_ok(value: str) -> bool:
    return len(value) <= 63 and REFERENCE_VALUE.fullmatch(value) is not None


# Mostly characters that matter to the rules, so that valid keys are common, plus any text.
_ALPHABET = st.sampled_from("abcxyzABZ019-_./")
_PIECES = st.text(_ALPHABET, max_size=70)
KEYS = st.one_of(
    _PIECES, st.builds(lambda p, n: f"{p}/{n}", _PIECES, _PIECES), st.text(max_size=20)
)
VALUES = st.one_of(_PIECES, st.text(max_size=20))


@given(KEYS)
def test_label_keys_match_the_reference(key: str) -> None:
    assert (qualified_name_error(key) is None) == reference_key_ok(key)


@given(VALUES)
def test_label_values_match_the_reference(value: str) -> None:
    assert (label_value_error(value) is None) == reference_value_ok(value)


def test_boundaries() -> None:
    assert qualified_name_error("a" * 63) is None
    assert qualified_name_error("a" * 64) is not None
    assert qualified_name_error("example.com/" + "a" * 63) is None
    assert qualified_name_error("/a") is not None
    assert label_value_error("") is None
    assert label_value_error("a" * 64) is not None
