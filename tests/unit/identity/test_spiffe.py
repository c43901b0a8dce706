from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambientmesh.errors import IdentityError
from ambientmesh.identity.spiffe import Identity, NodeIdentity, parse_any

segments = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", fullmatch=True)
trust_domains = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,30}", fullmatch=True)


def test_parse_istio_workload_form() -> None:
    identity = Identity.parse("spiffe://cluster.local/ns/default/sa/sleep")
    assert identity == Identity(
        trust_domain="cluster.local", namespace="default", service_account="sleep"
    )
    assert str(identity) == "spiffe://cluster.local/ns/default/sa/sleep"
    assert identity.principal == "cluster.local/ns/default/sa/sleep"


@given(trust_domains, segments, segments)
def test_format_then_parse_round_trips(td: str, ns: str, sa: str) -> None:
    identity = Identity(trust_domain=td, namespace=ns, service_account=sa)
    assert Identity.parse(str(identity)) == identity


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("http://cluster.local/ns/a/sa/b", "must start with 'spiffe://'"),
        ("spiffe://cluster.local/ns/a/sa/b/extra", "not a workload identity"),
        ("spiffe://cluster.local/ns/a/sa", "not a workload identity"),
        ("spiffe://cluster.local/ns/a/xx/b", "not a workload identity"),
        ("spiffe://cluster.local/namespace/a/sa/b", "not a workload identity"),
        ("spiffe://cluster.local/ns//sa/b", "namespace is empty"),
        ("spiffe://cluster.local/ns/a/sa/", "service account is empty"),
        ("spiffe://cluster.local/ns/../sa/b", "namespace '..'"),
        ("spiffe://Cluster.Local/ns/a/sa/b", "lowercase"),
        ("spiffe:///ns/a/sa/b", "trust domain is empty"),
        ("spiffe://cluster.local:443/ns/a/sa/b", "no query, fragment, port"),
        ("spiffe://cluster.local/ns/a/sa/b?x=1", "no query, fragment, port"),
        ("spiffe://cluster.local/ns/a%2Fb/sa/b", "no query, fragment, port"),
        ("spiffe://cluster.local/ns/a b/sa/b", "may hold only"),
        ("spiffe://cluster.local/ambientmesh/node/n1", "not a workload identity"),
        ("spiffe://" + "a" * 3000, "longer than 2048"),
    ],
)
def test_parse_rejects_with_a_message_saying_what_is_wrong(uri: str, complaint: str) -> None:
    with pytest.raises(IdentityError) as caught:
        Identity.parse(uri)
    assert complaint in caught.value.message


def test_constructor_validates_too_so_no_bad_identity_exists() -> None:
    with pytest.raises(IdentityError, match="namespace"):
        Identity(trust_domain="td", namespace="a/sa/b", service_account="c")


def test_order_and_hash_allow_use_in_sets_and_sorting() -> None:
    a = Identity.parse("spiffe://td/ns/a/sa/x")
    b = Identity.parse("spiffe://td/ns/b/sa/x")
    assert sorted([b, a]) == [a, b]
    assert {a, Identity.parse(str(a))} == {a}


def test_node_identity_form_and_that_it_never_parses_as_a_workload() -> None:
    node = NodeIdentity.parse("spiffe://cluster.local/ambientmesh/node/worker-1")
    assert node.node == "worker-1"
    assert str(node) == "spiffe://cluster.local/ambientmesh/node/worker-1"
    with pytest.raises(IdentityError):
        Identity.parse(str(node))
    with pytest.raises(IdentityError, match="not a node identity"):
        NodeIdentity.parse("spiffe://cluster.local/ns/a/sa/b")


def test_parse_any_tells_the_two_forms_apart() -> None:
    assert isinstance(parse_any("spiffe://td/ns/a/sa/b"), Identity)
    assert isinstance(parse_any("spiffe://td/ambientmesh/node/n"), NodeIdentity)
    with pytest.raises(IdentityError, match="neither a workload identity"):
        parse_any("spiffe://td/other/thing")
    with pytest.raises(IdentityError, match="must start with"):
        parse_any("https://td/ns/a/sa/b")
