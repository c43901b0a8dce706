"""AuthorizationPolicy -> ztunnel Authorization, rule by rule (istio-ambient.md §4)."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from ambientmesh.controlplane.ambient.authorization import convert, string_match
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import read_authorization_policy
from ambientmesh.proto import authorization_pb2 as pb

from .objects import policy

CONFIG = MeshConfig()


def converted(spec: dict[str, Any], ns: str = "default", **meta: Any) -> pb.Authorization | None:
    return convert(read_authorization_policy(policy("p", ns, spec, **meta)), CONFIG).authorization


def as_json(message: pb.Authorization | None) -> dict[str, Any]:
    assert message is not None
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=False)


PRESENCE = {"presence": {}}


@pytest.mark.parametrize(
    ("ns", "spec", "scope"),
    [
        ("istio-system", {}, "GLOBAL"),
        ("default", {}, "NAMESPACE"),
        ("default", {"selector": {"matchLabels": {}}}, "NAMESPACE"),
        ("default", {"selector": {"matchLabels": {"app": "a"}}}, "WORKLOAD_SELECTOR"),
        ("istio-system", {"selector": {"matchLabels": {"app": "a"}}}, "WORKLOAD_SELECTOR"),
    ],
)
def test_scope(ns: str, spec: dict[str, Any], scope: str) -> None:
    message = converted(spec, ns)
    assert message is not None
    assert pb.Scope.Name(message.scope) == scope


def test_allow_nothing_has_no_rules() -> None:
    """`spec: {}` is ALLOW with no rules: matches nothing, so it denies everything."""
    message = converted({})
    assert message is not None
    assert message.action == pb.ALLOW
    assert list(message.rules) == []


def test_empty_rule_matches_everything() -> None:
    message = converted({"rules": [{}]})
    assert message is not None
    assert len(message.rules) == 1
    assert list(message.rules[0].clauses) == []


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"action": "AUDIT", "rules": [{}]}, "UnsupportedValue"),
        ({"action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{}]}, "UnsupportedValue"),
        (
            {
                "targetRefs": [
                    {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "w"}
                ]
            },
            "NotApplicable",
        ),
        ({"targetRef": {"kind": "Service", "group": "", "name": "s"}}, "NotApplicable"),
    ],
)
def test_not_sent_to_ztunnel(spec: dict[str, Any], reason: str) -> None:
    result = convert(read_authorization_policy(policy("p", "default", spec)), CONFIG)
    assert result.authorization is None
    assert not result.accepted
    assert result.reason == reason


def test_scenario_25_gateway_class_allow_nothing_is_for_waypoints_only() -> None:
    """Reference §7 #25: `allow-nothing` with targetRefs GatewayClass istio-waypoint in the root
    namespace is enforced by waypoints; ztunnel never receives it."""
    spec = {
        "targetRefs": [
            {"kind": "GatewayClass", "group": "gateway.networking.k8s.io", "name": "istio-waypoint"}
        ]
    }
    assert converted(spec, "istio-system") is None


def test_scenario_23_root_allow_nothing_is_global() -> None:
    message = converted({}, "istio-system")
    assert as_json(message) == {"name": "p", "namespace": "istio-system"}  # GLOBAL, ALLOW, no rules


def test_scenario_24_allow_from_waypoint_service_account() -> None:
    spec = {
        "selector": {"matchLabels": {"app": "b"}},
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/app/sa/waypoint"]}}]}],
    }
    assert as_json(converted(spec, "app"))["rules"] == [
        {
            "clauses": [
                {"matches": [{"principals": [{"exact": "cluster.local/ns/app/sa/waypoint"}]}]}
            ]
        }
    ]


def test_scenario_18_source_and_waypoint_principals() -> None:
    principals = ["cluster.local/ns/app/sa/client", "cluster.local/ns/app/sa/waypoint"]
    spec = {
        "selector": {"matchLabels": {"app": "b"}},
        "rules": [{"from": [{"source": {"principals": principals}}]}],
    }
    match = as_json(converted(spec, "app"))["rules"][0]["clauses"][0]["matches"][0]
    assert match == {"principals": [{"exact": p} for p in principals]}


def test_scenario_19_unknown_principal_is_kept_as_is() -> None:
    """Reference §7 #19: ALLOW only `cluster.local/ns/something/sa/else` -> an Authorization
    naming exactly that principal, so every real caller is denied."""
    spec = {
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/something/sa/else"]}}]}]
    }
    message = as_json(converted(spec))
    assert message["rules"] == [
        {
            "clauses": [
                {"matches": [{"principals": [{"exact": "cluster.local/ns/something/sa/else"}]}]}
            ]
        }
    ]
    assert message.get("action", "ALLOW") == "ALLOW"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", PRESENCE),
        ("*.example", {"suffix": ".example"}),
        ("cluster.local/ns/a/*", {"prefix": "cluster.local/ns/a/"}),
        ("exact", {"exact": "exact"}),
    ],
)
def test_string_match_forms(value: str, expected: dict[str, Any]) -> None:
    assert json_format.MessageToDict(string_match(value)) == expected


def test_clauses_to_from_when_and_together() -> None:
    spec = {
        "rules": [
            {
                "to": [
                    {"operation": {"ports": ["80", "8080"]}},
                    {"operation": {"notPorts": ["9090"]}},
                ],
                "from": [
                    {"source": {"namespaces": ["a"], "notNamespaces": ["b*"]}},
                    {
                        "source": {
                            "ipBlocks": ["10.0.0.0/8", "192.168.1.1", "bogus"],
                            "notIpBlocks": ["fd00::/8"],
                        }
                    },
                ],
                "when": [
                    {"key": "destination.port", "values": ["80"], "notValues": ["81"]},
                    {"key": "source.principal", "notValues": ["*"]},
                    {"key": "destination.ip", "values": ["10.1.2.3"]},
                ],
            }
        ]
    }
    clauses = as_json(converted(spec))["rules"][0]["clauses"]
    assert clauses == [
        {"matches": [{"destinationPorts": [80, 8080]}, {"notDestinationPorts": [9090]}]},
        {
            "matches": [
                {"namespaces": [{"exact": "a"}], "notNamespaces": [{"prefix": "b"}]},
                {
                    "sourceIps": [
                        {"address": "CgAAAA==", "length": 8},
                        {"address": "wKgBAQ==", "length": 32},
                    ],
                    "notSourceIps": [{"address": "/QAAAAAAAAAAAAAAAAAAAA==", "length": 8}],
                },
            ]
        },
        {"matches": [{"destinationPorts": [80], "notDestinationPorts": [81]}]},
        {"matches": [{"notPrincipals": [PRESENCE]}]},
        {"matches": [{"destinationIps": [{"address": "CgECAw==", "length": 32}]}]},
    ]


def test_service_accounts_default_to_the_policy_namespace() -> None:
    spec = {"rules": [{"from": [{"source": {"serviceAccounts": ["client", "other/sa"]}}]}]}
    match = as_json(converted(spec, "app"))["rules"][0]["clauses"][0]["matches"][0]
    assert match == {
        "serviceAccounts": [
            {"namespace": "app", "serviceAccount": "client"},
            {"namespace": "other", "serviceAccount": "sa"},
        ]
    }


def test_allow_rules_with_http_attributes_are_dropped() -> None:
    spec = {
        "rules": [
            {"to": [{"operation": {"methods": ["GET"], "ports": ["80"]}}]},
            {"from": [{"source": {"requestPrincipals": ["*"]}}]},
            {"when": [{"key": "request.headers[x-foo]", "values": ["bar"]}]},
            {"from": [{"source": {"namespaces": ["ok"]}}]},
        ]
    }
    result = convert(read_authorization_policy(policy("p", "default", spec)), CONFIG)
    assert result.authorization is not None
    assert len(result.authorization.rules) == 1
    assert result.reason == "UnsupportedValue"
    assert "methods" in result.message
    assert "request.headers[x-foo]" in result.message
    assert "more restrictive" in result.message


def test_allow_with_only_http_rules_becomes_allow_nothing() -> None:
    """The documented defensive move: every rule dropped -> the policy denies everything."""
    spec = {"rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}
    message = converted(spec)
    assert message is not None
    assert message.action == pb.ALLOW
    assert list(message.rules) == []


def test_deny_with_mixed_attributes_keeps_the_l4_part() -> None:
    spec = {
        "action": "DENY",
        "rules": [{"to": [{"operation": {"methods": ["POST"], "ports": ["80"]}}]}],
    }
    result = convert(read_authorization_policy(policy("p", "default", spec)), CONFIG)
    assert as_json(result.authorization)["rules"] == [
        {"clauses": [{"matches": [{"destinationPorts": [80]}]}]}
    ]
    assert "more restrictive" in result.message


def test_deny_with_only_http_attributes_has_no_effect() -> None:
    """An HTTP-only `to` becomes an empty match, which ztunnel skips: the rule never fires."""
    spec = {
        "action": "DENY",
        "rules": [
            {"to": [{"operation": {"methods": ["POST"]}}]},
            {"when": [{"key": "request.auth.claims[iss]", "values": ["x"]}]},
        ],
    }
    result = convert(read_authorization_policy(policy("p", "default", spec)), CONFIG)
    assert result.authorization is not None
    assert [list(rule.clauses) for rule in result.authorization.rules] == [
        [pb.Clause(matches=[pb.Match()])],
        [pb.Clause(matches=[pb.Match()])],
    ]
    assert "no effect" in result.message


def test_dry_run_policies_are_sent_only_when_enabled() -> None:
    annotated = policy("p", "default", {"rules": [{}]}, annotations={"istio.io/dry-run": "true"})
    facts = read_authorization_policy(annotated)
    assert convert(facts, CONFIG).authorization is None
    enabled = convert(facts, MeshConfig(dry_run_policies=True)).authorization
    assert enabled is not None
    assert enabled.dry_run


def test_unreadable_policy_fails_closed() -> None:
    result = convert(read_authorization_policy(policy("p", "default", {"rules": "oops"})), CONFIG)
    assert result.authorization is not None
    assert result.authorization.action == pb.DENY
    assert list(result.authorization.rules) == [pb.Rule()]
    assert not result.accepted
    assert result.reason == "Invalid"
