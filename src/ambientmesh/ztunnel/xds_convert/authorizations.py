"""``Authorization`` resources to policies; a policy that cannot be parsed denies.

Where ztunnel silently drops a malformed policy value (an unset string match, a bad CIDR), we
refuse the whole policy instead: dropping a value from a match can only widen it. A policy
that cannot be parsed is replaced by ``fail_closed_authorization``, which denies everything
the policy could have covered.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ambientmesh.proto import authorization_pb2
from ambientmesh.ztunnel.policy import (
    Action,
    Authorization,
    Clause,
    IPNetwork,
    Match,
    Rule,
    Scope,
    ServiceAccountMatch,
    StringMatch,
)
from ambientmesh.ztunnel.state import StateUpdate
from ambientmesh.ztunnel.xds_convert.fields import Converted, FieldReader, InvalidResource


def authorization_from_proto(message: authorization_pb2.Authorization) -> Authorization:
    """Convert one ``Authorization`` resource; any malformed value rejects the whole policy."""
    r = FieldReader(
        f"Authorization {message.namespace or '<no namespace>'}/{message.name or '<no name>'}"
    )
    return Authorization(
        name=r.required("name", message.name),
        namespace=r.required("namespace", message.namespace),
        scope=r.enum("scope", Scope, authorization_pb2.Scope, message.scope),
        action=r.enum("action", Action, authorization_pb2.Action, message.action),
        rules=tuple(
            Rule(
                clauses=tuple(
                    Clause(
                        matches=tuple(
                            _match(r, f"rules[{i}].clauses[{j}].matches[{k}]", match)
                            for k, match in enumerate(clause.matches)
                        )
                    )
                    for j, clause in enumerate(rule.clauses)
                )
            )
            for i, rule in enumerate(message.rules)
        ),
        dry_run=message.dry_run,
    )


def _match(r: FieldReader, path: str, message: authorization_pb2.Match) -> Match:
    def strings(name: str) -> tuple[StringMatch, ...]:
        values = getattr(message, name)
        return tuple(_string_match(r, f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def networks(name: str) -> tuple[IPNetwork, ...]:
        values = getattr(message, name)
        return tuple(_network(r, f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def ports(name: str) -> frozenset[int]:
        values = getattr(message, name)
        return frozenset(r.port(f"{path}.{name}[{i}]", v) for i, v in enumerate(values))

    def accounts(name: str) -> tuple[ServiceAccountMatch, ...]:
        values = getattr(message, name)
        return tuple(
            ServiceAccountMatch(
                namespace=r.required(f"{path}.{name}[{i}].namespace", v.namespace),
                service_account=r.required(f"{path}.{name}[{i}].serviceAccount", v.serviceAccount),
            )
            for i, v in enumerate(values)
        )

    return Match(
        namespaces=strings("namespaces"),
        not_namespaces=strings("not_namespaces"),
        principals=strings("principals"),
        not_principals=strings("not_principals"),
        source_ips=networks("source_ips"),
        not_source_ips=networks("not_source_ips"),
        destination_ips=networks("destination_ips"),
        not_destination_ips=networks("not_destination_ips"),
        destination_ports=ports("destination_ports"),
        not_destination_ports=ports("not_destination_ports"),
        service_accounts=accounts("service_accounts"),
        not_service_accounts=accounts("not_service_accounts"),
    )


def _string_match(r: FieldReader, path: str, message: authorization_pb2.StringMatch) -> StringMatch:
    kind = message.WhichOneof("match_type")
    if kind == "exact":
        return StringMatch.exact(message.exact)
    if kind == "prefix":
        return StringMatch.prefix(message.prefix)
    if kind == "suffix":
        return StringMatch.suffix(message.suffix)
    if kind == "presence":
        return StringMatch.presence()
    raise r.fail(path, "sets none of exact, prefix, suffix, presence")


def _network(r: FieldReader, path: str, message: authorization_pb2.Address) -> IPNetwork:
    ip = r.ip(f"{path}.address", message.address)
    if message.length > ip.max_prefixlen:
        raise r.fail(f"{path}.length", f"{message.length} exceeds {ip.max_prefixlen} for {ip}")
    # Host bits are allowed and ignored, as a CIDR in a policy is read by its prefix.
    return ipaddress.ip_network(f"{ip}/{message.length}", strict=False)


def fail_closed_authorization(
    resource_name: str, message: authorization_pb2.Authorization, error: InvalidResource
) -> Authorization:
    """A stand-in for a policy that could not be parsed: a DENY that matches everything, for
    the workloads the policy would have covered (its scope, or its whole namespace when even
    the scope is unreadable). ``resource_name`` is the xDS name, ``<namespace>/<name>``."""
    namespace, sep, name = resource_name.partition("/")
    if not sep:
        namespace, name = message.namespace, resource_name
    names = authorization_pb2.Scope
    try:
        scope = Scope[names.Name(message.scope)]
    except (ValueError, KeyError):
        scope = Scope.NAMESPACE
    return Authorization(
        name=name or message.name,
        namespace=namespace,
        scope=scope,
        action=Action.DENY,
        rules=(Rule(),),  # a rule without clauses matches every connection
        dry_run=message.dry_run,
        conversion_error=error.message,
    )


def authorization_update(
    resources: Iterable[tuple[str, authorization_pb2.Authorization]], removed: Iterable[str] = ()
) -> Converted:
    """Convert the ``Authorization`` resources of one delta response, keyed by resource name.

    A policy that fails is replaced by its fail-closed stand-in (never silently skipped: a
    skipped DENY would allow what it was meant to deny) and reported in ``errors``.
    """
    policies: list[Authorization] = []
    errors: list[InvalidResource] = []
    for name, message in resources:
        try:
            converted = authorization_from_proto(message)
            if converted.key != name:
                raise InvalidResource(name, "", f"resource name should be {converted.key!r}")
        except InvalidResource as error:
            errors.append(error)
            converted = fail_closed_authorization(name, message, error)
        policies.append(converted)
    update = StateUpdate(policies=tuple(policies), removed_policies=tuple(removed))
    return Converted(update=update, errors=tuple(errors))
