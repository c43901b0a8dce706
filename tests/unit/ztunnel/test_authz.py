"""L4 authorization as ztunnel enforces it (reference 4.2-4.4): matching, then the decision."""

from __future__ import annotations

import ipaddress

import pytest

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.authz import authorize, authorize_workload
from ambientmesh.ztunnel.model import parse_ip
from ambientmesh.ztunnel.policy import (
    Action,
    Authorization,
    Clause,
    ConnectionFacts,
    Match,
    Rule,
    Scope,
    ServiceAccountMatch,
    StringMatch,
)

from .builders import from_principals, identity, pod, policy, rule, state_of

SLEEP = identity("sleep", ns="foo")
MTLS = ConnectionFacts(
    src_ip=parse_ip("10.0.0.1"), src_identity=SLEEP, dst_ip=parse_ip("10.0.1.1"), dst_port=8080
)
PLAINTEXT = ConnectionFacts(
    src_ip=parse_ip("10.0.0.1"), src_identity=None, dst_ip=parse_ip("10.0.1.1"), dst_port=8080
)


def net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr)


def sm(pattern: str) -> StringMatch:
    return StringMatch.from_pattern(pattern)


# (match, holds for the mTLS connection from foo/sleep, holds for plaintext)
MATCHES = {
    "principal exact, without spiffe://": (
        Match(principals=(sm("cluster.local/ns/foo/sa/sleep"),)),
        True,
        False,
    ),
    "principal written with spiffe:// never matches (istio/ztunnel#1901)": (
        Match(principals=(sm("spiffe://cluster.local/ns/foo/sa/sleep"),)),
        False,
        False,
    ),
    "principal prefix": (Match(principals=(sm("cluster.local/ns/foo/*"),)), True, False),
    "principal suffix": (Match(principals=(sm("*/sa/sleep"),)), True, False),
    "principal presence": (Match(principals=(sm("*"),)), True, False),
    "principal other": (Match(principals=(sm("cluster.local/ns/foo/sa/else"),)), False, False),
    "any of several principals": (
        Match(principals=(sm("cluster.local/ns/x/sa/y"), sm("cluster.local/ns/foo/sa/sleep"))),
        True,
        False,
    ),
    "notPrincipals presence: only plaintext (the STRICT conversion)": (
        Match(not_principals=(sm("*"),)),
        False,
        True,
    ),
    "notPrincipals other": (Match(not_principals=(sm("cluster.local/ns/x/sa/y"),)), True, True),
    "namespace from the SPIFFE identity": (Match(namespaces=(sm("foo"),)), True, False),
    "namespace prefix": (Match(namespaces=(sm("f*"),)), True, False),
    "namespace other": (Match(namespaces=(sm("bar"),)), False, False),
    "notNamespaces": (Match(not_namespaces=(sm("foo"),)), False, True),
    "service account": (
        Match(service_accounts=(ServiceAccountMatch(namespace="foo", service_account="sleep"),)),
        True,
        False,
    ),
    "service account of another namespace": (
        Match(service_accounts=(ServiceAccountMatch(namespace="bar", service_account="sleep"),)),
        False,
        False,
    ),
    "not service account": (
        Match(
            not_service_accounts=(ServiceAccountMatch(namespace="foo", service_account="sleep"),)
        ),
        False,
        True,
    ),
    "source CIDR": (Match(source_ips=(net("10.0.0.0/24"),)), True, True),
    "source CIDR other": (Match(source_ips=(net("10.9.0.0/16"),)), False, False),
    "source CIDR of the other family": (Match(source_ips=(net("fd00::/8"),)), False, False),
    "not source CIDR": (Match(not_source_ips=(net("10.0.0.1/32"),)), False, False),
    "destination CIDR (the pod IP)": (Match(destination_ips=(net("10.0.1.0/24"),)), True, True),
    "not destination CIDR": (Match(not_destination_ips=(net("10.0.1.1/32"),)), False, False),
    "destination port (the target port)": (Match(destination_ports=frozenset({8080})), True, True),
    "destination port other": (Match(destination_ports=frozenset({80})), False, False),
    "not destination port": (Match(not_destination_ports=frozenset({8080})), False, False),
    "every populated field must hold": (
        Match(namespaces=(sm("foo"),), destination_ports=frozenset({80})),
        False,
        False,
    ),
    "positive and negative of one field": (
        Match(principals=(sm("*"),), not_principals=(sm("cluster.local/ns/foo/sa/sleep"),)),
        False,
        False,
    ),
}


@pytest.mark.parametrize(("match", "mtls", "plaintext"), MATCHES.values(), ids=MATCHES.keys())
def test_match(match: Match, mtls: bool, plaintext: bool) -> None:
    assert match.applies_to(MTLS) is mtls
    assert match.applies_to(PLAINTEXT) is plaintext


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("ab*", "abcd", True),
        ("*cd", "abcd", True),
        ("*cd", "abce", False),
        ("*", "x", True),
        ("*", "", False),
    ],
)
def test_string_match_syntax(pattern: str, text: str, expected: bool) -> None:
    assert StringMatch.from_pattern(pattern).matches(text) is expected


ALL = Rule()  # no clauses: matches every connection
NOTHING = Rule(clauses=(Clause(matches=(Match(),)),))  # only an empty (L7-only) match


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ((), False),
        ((ALL,), True),
        ((NOTHING,), False),
        ((Rule(clauses=(Clause(),)),), True),
        ((Rule(clauses=(Clause(matches=(Match(), from_principals("*"))),)),), True),
        ((rule(from_principals("*"), Match(destination_ports=frozenset({80}))),), False),
        ((rule(from_principals("*"), Match(destination_ports=frozenset({8080}))),), True),
        ((NOTHING, ALL), True),
    ],
    ids=[
        "no rules match nothing",
        "a rule with no clauses matches all",
        "an empty match is skipped, so an L7-only clause never matches",
        "a clause with no matches holds",
        "empty matches are skipped, others still count",
        "clauses are AND-ed (port fails)",
        "clauses are AND-ed (all hold)",
        "rules are OR-ed",
    ],
)
def test_policy_structure(rules: tuple[Rule, ...], expected: bool) -> None:
    pol = Authorization(
        name="p", namespace="ns", scope=Scope.NAMESPACE, action=Action.DENY, rules=rules
    )
    assert pol.applies_to(MTLS) is expected


def allow(name: str, *rules: Rule, dry_run: bool = False) -> Authorization:
    return policy(name, *rules, action=Action.ALLOW, dry_run=dry_run)


def deny(name: str, *rules: Rule, dry_run: bool = False) -> Authorization:
    return policy(name, *rules, action=Action.DENY, dry_run=dry_run)


MATCHES_SLEEP = rule(from_principals("cluster.local/ns/foo/sa/sleep"))
MATCHES_OTHER = rule(from_principals("cluster.local/ns/something/sa/else"))

# (policies, allowed, deciding policy, reason fragment)
DECISIONS = {
    "4.4 step 4: no policies allow": ((), True, None, "no ALLOW policy applies"),
    "4.4 step 2: a matching DENY denies": (
        (deny("d", MATCHES_SLEEP),),
        False,
        "default/d",
        "explicitly denied by: default/d",
    ),
    "4.4 step 2: a DENY that does not match has no effect": (
        (deny("d", MATCHES_OTHER),),
        True,
        None,
        "no ALLOW policy applies",
    ),
    "4.4 step 5: a matching ALLOW allows": (
        (allow("a", MATCHES_SLEEP),),
        True,
        "default/a",
        "allowed by: default/a",
    ),
    "4.4 step 5: ALLOW policies exist but none matches: deny": (
        (allow("a", MATCHES_OTHER),),
        False,
        None,
        "allow policies exist, but none allowed",
    ),
    "4.4: DENY wins over a matching ALLOW": (
        (allow("a", MATCHES_SLEEP), deny("d", ALL)),
        False,
        "default/d",
        "explicitly denied by",
    ),
    "4.4: allow-nothing (ALLOW with no rules) denies everything": (
        (allow("allow-nothing"),),
        False,
        None,
        "none allowed",
    ),
    "4.4: a rule {} in ALLOW allows everything": (
        (allow("all", ALL),),
        True,
        "default/all",
        "allowed by",
    ),
    "4.3: ALLOW whose only rule was L7 (dropped) denies": (
        (allow("l7"),),
        False,
        None,
        "none allowed",
    ),
    "4.3: DENY with only L7 attributes (empty match) has no effect": (
        (deny("l7", NOTHING),),
        True,
        None,
        "no ALLOW",
    ),
    "4.4 step 1: a matching dry-run DENY does not deny": (
        (deny("d", ALL, dry_run=True),),
        True,
        None,
        "no ALLOW",
    ),
    "4.4 step 3: a dry-run ALLOW alone does not make ALLOW policies exist": (
        (allow("a", MATCHES_OTHER, dry_run=True),),
        True,
        None,
        "no ALLOW",
    ),
}


@pytest.mark.parametrize(
    ("policies", "allowed", "deciding", "reason"), DECISIONS.values(), ids=DECISIONS.keys()
)
def test_decision(
    policies: tuple[Authorization, ...], allowed: bool, deciding: str | None, reason: str
) -> None:
    decision = authorize(policies, MTLS)
    assert decision.allowed is allowed
    assert decision.policy == deciding
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("policies", "matched", "would_deny"),
    [
        ((deny("d", ALL, dry_run=True),), ("default/d",), True),
        ((deny("d", MATCHES_OTHER, dry_run=True),), (), False),
        ((allow("a", MATCHES_OTHER, dry_run=True),), (), True),
        ((allow("a", MATCHES_SLEEP, dry_run=True),), ("default/a",), False),
        ((allow("a", MATCHES_SLEEP), deny("d", ALL, dry_run=True)), ("default/d",), True),
    ],
    ids=[
        "dry-run DENY matched: would deny",
        "dry-run DENY not matched",
        "dry-run ALLOW none matched: would deny",
        "dry-run ALLOW matched",
        "reported next to an enforced allow",
    ],
)
def test_dry_run_is_reported_never_enforced(
    policies: tuple[Authorization, ...], matched: tuple[str, ...], would_deny: bool
) -> None:
    decision = authorize(policies, MTLS)
    assert decision.allowed
    assert decision.dry_run_matched == matched
    assert decision.dry_run_would_deny is would_deny


def test_plaintext_has_no_identity_for_any_positive_identity_match() -> None:
    """Reference 4.2: plaintext has no principal, namespace or service account."""
    policies = (allow("a", rule(Match(namespaces=(sm("*"),)))),)
    assert authorize(policies, MTLS).allowed
    assert not authorize(policies, PLAINTEXT).allowed


def test_policy_scoping_for_a_workload() -> None:
    """Reference 4.4: namespace policies of W's namespace, global ones, and W's selector list;
    unknown selector names are skipped."""
    target = pod(
        "server", "10.0.1.1", ns="prod", authorization_policies=("prod/selected", "prod/gone")
    )
    state = state_of(
        target,
        policy("ns-wide", ns="prod", scope=Scope.NAMESPACE),
        policy("other-ns", ns="dev", scope=Scope.NAMESPACE),
        policy("mesh-wide", ns="istio-system", scope=Scope.GLOBAL),
        policy("selected", ns="prod", scope=Scope.WORKLOAD_SELECTOR),
        policy("not-selected", ns="prod", scope=Scope.WORKLOAD_SELECTOR),
    )
    keys = [p.key for p in state.policies_for(target)]
    assert keys == ["prod/ns-wide", "istio-system/mesh-wide", "prod/selected"]


def test_authorize_workload_uses_the_current_policies() -> None:
    target = pod("server", "10.0.1.1", ns="prod")
    state = state_of(target, policy("deny-all", ALL, ns="prod", action=Action.DENY))
    decision = authorize_workload(state, target, MTLS)
    assert not decision.allowed
    assert decision.policy == "prod/deny-all"


def test_identity_trust_domain_is_part_of_the_principal() -> None:
    other_td = Identity(trust_domain="example.org", namespace="foo", service_account="sleep")
    facts = ConnectionFacts(
        src_ip=MTLS.src_ip, src_identity=other_td, dst_ip=MTLS.dst_ip, dst_port=MTLS.dst_port
    )
    assert not Match(principals=(sm("cluster.local/ns/foo/sa/sleep"),)).applies_to(facts)
    assert Match(namespaces=(sm("foo"),)).applies_to(facts)
