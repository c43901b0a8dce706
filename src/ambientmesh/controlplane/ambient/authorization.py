"""AuthorizationPolicy -> ztunnel's L4 Authorization, exactly as istiod converts it.

Reference: istio-ambient.md §4.1-4.3, l7-semantics.md §4.8.

- Only ALLOW and DENY reach ztunnel; AUDIT, CUSTOM and targetRef(s) policies do not, and
  dry-run policies only when the mesh enables them.
- Scope: root namespace without selector -> GLOBAL; no selector -> NAMESPACE; selector ->
  WORKLOAD_SELECTOR (workloads list the policy by name).
- Per rule: the ``to`` operations form one clause (OR of matches), the ``from`` sources
  another, each ``when`` its own clause; clauses AND.
- HTTP-only attributes: an ALLOW rule using any is dropped (it could never match, so the
  policy fails closed); in a DENY they are stripped, and a ``to``/``from``/``when`` made only
  of them becomes an empty match, which ztunnel skips, so that rule never fires.
- A policy that cannot be read fails closed: it becomes a DENY of everything in its scope.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.empty_pb2 import Empty

from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import PolicyFacts
from ambientmesh.proto import authorization_pb2 as pb

# Fields that need HTTP: ztunnel cannot see them.
_L7_OPERATION = ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths")
_L7_SOURCE = (
    "requestPrincipals",
    "notRequestPrincipals",
    "remoteIpBlocks",
    "notRemoteIpBlocks",
    "trustDomains",
    "notTrustDomains",
)
_L4_WHEN = {
    "source.ip": ("source_ips", "not_source_ips"),
    "source.namespace": ("namespaces", "not_namespaces"),
    "source.principal": ("principals", "not_principals"),
    "destination.ip": ("destination_ips", "not_destination_ips"),
    "destination.port": ("destination_ports", "not_destination_ports"),
}
_STRING_FIELDS = {"principals", "not_principals", "namespaces", "not_namespaces"}
_IP_FIELDS = {"source_ips", "not_source_ips", "destination_ips", "not_destination_ips"}
_EMPTY = pb.Match()


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversion:
    """The result for one policy: what ztunnel gets (or None) and what status to report."""

    authorization: pb.Authorization | None
    accepted: bool  # False: ztunnel enforces none of it (condition status False)
    reason: str  # Accepted | UnsupportedValue | NotApplicable | Invalid
    message: str


def resource_name(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def scope_of(policy: PolicyFacts, config: MeshConfig) -> pb.Scope.ValueType:
    if policy.selector:
        return pb.WORKLOAD_SELECTOR
    if policy.meta.namespace == config.root_namespace:
        return pb.GLOBAL
    return pb.NAMESPACE


def convert(policy: PolicyFacts, config: MeshConfig) -> Conversion:
    """Convert one AuthorizationPolicy for ztunnel."""
    spec = policy.spec
    action = spec.get("action", "ALLOW")
    if policy.targeted:
        return Conversion(
            authorization=None,
            accepted=False,
            reason="NotApplicable",
            message="targetRefs policies are enforced by waypoints, not by ztunnel",
        )
    if action in ("AUDIT", "CUSTOM"):
        return Conversion(
            authorization=None,
            accepted=False,
            reason="UnsupportedValue",
            message=f"ztunnel does not support the {action} action",
        )
    dry_run = policy.meta.annotations.get(L.DRY_RUN_ANNOTATION, "").lower() == "true"
    if dry_run and not config.dry_run_policies:
        return Conversion(
            authorization=None,
            accepted=False,
            reason="UnsupportedValue",
            message="ztunnel does not support dry-run policies in this mesh",
        )
    try:
        return _convert(policy, config, action, dry_run)
    except (TypeError, ValueError, AttributeError) as error:
        return _fail_closed(policy, config, f"policy cannot be read ({error}); denying all")


def _convert(policy: PolicyFacts, config: MeshConfig, action: str, dry_run: bool) -> Conversion:
    if action not in ("ALLOW", "DENY"):
        raise ValueError(f"unknown action {action!r}")
    rules = _list(policy.spec.get("rules"))
    converted: list[pb.Rule] = []
    found: list[str] = []
    for rule in rules:
        l7 = _l7_attributes(_map(rule))
        found.extend(name for name in l7 if name not in found)
        if l7 and action == "ALLOW":
            continue  # could never match: drop the rule (fails closed)
        converted.append(_rule(_map(rule), policy.meta.namespace))
    # A DENY rule with a clause of only empty matches can never fire at ztunnel.
    inert = any(_inert(clause) for rule in converted for clause in rule.clauses)
    authorization = pb.Authorization(
        name=policy.meta.name,
        namespace=policy.meta.namespace,
        scope=scope_of(policy, config),
        action=pb.ALLOW if action == "ALLOW" else pb.DENY,
        rules=converted,
        dry_run=dry_run,
    )
    if not found:
        return Conversion(
            authorization=authorization,
            accepted=True,
            reason="Accepted",
            message="attached to ztunnel",
        )
    return Conversion(
        authorization=authorization,
        accepted=True,
        reason="UnsupportedValue",
        message=_l7_message(action, found, inert),
    )


def _l7_message(action: str, found: list[str], inert: bool) -> str:
    lead = (
        f"ztunnel cannot enforce HTTP attributes (found: {', '.join(found)}); "
        "attach the policy to a waypoint with targetRefs to enforce them. "
    )
    if action == "ALLOW":
        return lead + (
            "Rules of an ALLOW policy that use them are omitted, so this is more restrictive "
            "than requested."
        )
    if inert:
        return lead + (
            "DENY rules made only of HTTP attributes have no effect at ztunnel; rules mixing "
            "them with L4 attributes are enforced on the L4 part, which is more restrictive."
        )
    return lead + "The DENY policy is enforced without them, which is more restrictive."


def _fail_closed(policy: PolicyFacts, config: MeshConfig, message: str) -> Conversion:
    deny_all = pb.Authorization(
        name=policy.meta.name,
        namespace=policy.meta.namespace,
        scope=scope_of(policy, config),
        action=pb.DENY,
        rules=[pb.Rule()],  # a rule without clauses matches everything
    )
    return Conversion(authorization=deny_all, accepted=False, reason="Invalid", message=message)


# ----------------------------------------------------------------------------- rules


def _l7_attributes(rule: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for to in _list(rule.get("to")):
        operation = _map(_map(to).get("operation"))
        found.extend(name for name in _L7_OPERATION if operation.get(name))
    for source_from in _list(rule.get("from")):
        source = _map(_map(source_from).get("source"))
        found.extend(name for name in _L7_SOURCE if source.get(name))
    for condition in _list(rule.get("when")):
        key = _map(condition).get("key")
        if isinstance(key, str) and key not in _L4_WHEN:
            found.append(key)
    return found


def _rule(rule: Mapping[str, Any], namespace: str) -> pb.Rule:
    clauses: list[pb.Clause] = []
    operations = _list(rule.get("to"))
    if operations:
        matches = [_operation(_map(_map(to).get("operation"))) for to in operations]
        clauses.append(pb.Clause(matches=matches))
    sources = _list(rule.get("from"))
    if sources:
        matches = [_source(_map(_map(item).get("source")), namespace) for item in sources]
        clauses.append(pb.Clause(matches=matches))
    for condition in _list(rule.get("when")):
        clauses.append(pb.Clause(matches=[_condition(_map(condition))]))
    return pb.Rule(clauses=clauses)


def _operation(operation: Mapping[str, Any]) -> pb.Match:
    return pb.Match(
        destination_ports=_ports(operation.get("ports")),
        not_destination_ports=_ports(operation.get("notPorts")),
    )


def _source(source: Mapping[str, Any], namespace: str) -> pb.Match:
    return pb.Match(
        principals=_strings(source.get("principals")),
        not_principals=_strings(source.get("notPrincipals")),
        namespaces=_strings(source.get("namespaces")),
        not_namespaces=_strings(source.get("notNamespaces")),
        source_ips=_addresses(source.get("ipBlocks")),
        not_source_ips=_addresses(source.get("notIpBlocks")),
        service_accounts=_accounts(source.get("serviceAccounts"), namespace),
        not_service_accounts=_accounts(source.get("notServiceAccounts"), namespace),
    )


def _condition(condition: Mapping[str, Any]) -> pb.Match:
    key = condition.get("key")
    fields = _L4_WHEN.get(key) if isinstance(key, str) else None
    match = pb.Match()
    if fields is None:
        return match  # HTTP-only key: an empty match, which ztunnel skips
    for target, values in zip(
        fields, (condition.get("values"), condition.get("notValues")), strict=True
    ):
        if target in _STRING_FIELDS:
            getattr(match, target).extend(_strings(values))
        elif target in _IP_FIELDS:
            getattr(match, target).extend(_addresses(values))
        else:
            getattr(match, target).extend(_ports(values))
    return match


def string_match(value: str) -> pb.StringMatch:
    """Istio's policy string syntax: ``*`` presence, ``*x`` suffix, ``x*`` prefix, else exact."""
    if value == "*":
        return pb.StringMatch(presence=Empty())
    if value.startswith("*"):
        return pb.StringMatch(suffix=value[1:])
    if value.endswith("*"):
        return pb.StringMatch(prefix=value[:-1])
    return pb.StringMatch(exact=value)


def _strings(values: Any) -> list[pb.StringMatch]:
    return [string_match(value) for value in _list(values) if isinstance(value, str)]


def _ports(values: Any) -> list[int]:
    ports = []
    for value in _list(values):
        text = str(value)
        if text.isdigit() and int(text) <= 65535:
            ports.append(int(text))
    return ports


def _addresses(values: Any) -> list[pb.Address]:
    """IPs and CIDRs; entries that do not parse are skipped, as istiod's converter does."""
    addresses = []
    for value in _list(values):
        try:
            network = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            continue
        addresses.append(
            pb.Address(address=network.network_address.packed, length=network.prefixlen)
        )
    return addresses


def _accounts(values: Any, namespace: str) -> list[pb.ServiceAccountMatch]:
    accounts = []
    for value in _list(values):
        if isinstance(value, str) and value:
            ns, _, sa = value.rpartition("/")
            accounts.append(pb.ServiceAccountMatch(namespace=ns or namespace, serviceAccount=sa))
    return accounts


def _inert(clause: pb.Clause) -> bool:
    return all(match == _EMPTY for match in clause.matches)


def _map(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, found {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a list, found {type(value).__name__}")
    return value
