"""L4 authorization decisions for a destination workload, in ztunnel's order (reference 4.4).

1. dry-run DENY policies that match are only reported;
2. any enforced DENY that matches denies;
3. dry-run ALLOW policies are only reported ("would deny" when none of them matches);
4. with no enforced ALLOW policy the connection is allowed;
5. otherwise one enforced ALLOW must match, else the connection is denied.

A policy with no rules matches nothing, so an ALLOW ``spec: {}`` allows nothing; a rule with
no clauses matches everything. Policy is enforced on the destination side only, and re-run for
live connections whenever policies change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ambientmesh.ztunnel.model import Workload
from ambientmesh.ztunnel.policy import Action, Authorization, ConnectionFacts
from ambientmesh.ztunnel.state import State


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The verdict, the policy that settled it, and what dry-run policies would have done."""

    allowed: bool
    reason: str
    # "<namespace>/<name>" of the DENY that denied or the ALLOW that allowed.
    policy: str | None = None
    # Dry-run policies that matched; they are logged and never enforced.
    dry_run_matched: tuple[str, ...] = ()
    # True when the dry-run policies alone would have denied this connection.
    dry_run_would_deny: bool = False


def authorize(policies: Iterable[Authorization], conn: ConnectionFacts) -> Decision:
    """Decide ``conn`` against the policies that apply to its destination workload."""
    allow: list[Authorization] = []
    deny: list[Authorization] = []
    dry_allow: list[Authorization] = []
    dry_deny: list[Authorization] = []
    for policy in policies:
        is_allow = policy.action is Action.ALLOW
        if policy.dry_run:
            (dry_allow if is_allow else dry_deny).append(policy)
        else:
            (allow if is_allow else deny).append(policy)
    dry_matched = tuple(p.key for p in (*dry_deny, *dry_allow) if p.applies_to(conn))
    dry_denies = any(p.key in dry_matched for p in dry_deny) or (
        bool(dry_allow) and not any(p.key in dry_matched for p in dry_allow)
    )

    def decided(allowed: bool, reason: str, policy: str | None = None) -> Decision:
        return Decision(
            allowed=allowed,
            reason=reason,
            policy=policy,
            dry_run_matched=dry_matched,
            dry_run_would_deny=dry_denies,
        )

    for policy in deny:
        if policy.applies_to(conn):
            return decided(False, _denied_by(policy), policy.key)
    if not allow:
        return decided(True, "no ALLOW policy applies")
    for policy in allow:
        if policy.applies_to(conn):
            return decided(True, f"allowed by: {policy.key}", policy.key)
    return decided(False, "allow policies exist, but none allowed")


def authorize_workload(state: State, workload: Workload, conn: ConnectionFacts) -> Decision:
    """Decide ``conn`` to ``workload`` with the policies ``state`` holds for it now."""
    return authorize(state.policies_for(workload), conn)


def _denied_by(policy: Authorization) -> str:
    reason = f"explicitly denied by: {policy.key}"
    if policy.conversion_error:
        reason += f" (stand-in for a policy that could not be parsed: {policy.conversion_error})"
    return reason
