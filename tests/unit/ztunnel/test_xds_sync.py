"""Discovery responses into State: partial apply with NACK, fail-closed policies, waiting."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.proto import authorization_pb2 as apb
from ambientmesh.proto import workload_pb2 as wpb
from ambientmesh.testing.clock import FakeClock
from ambientmesh.xds.session import Update
from ambientmesh.xds.types import ADDRESS_TYPE_URL
from ambientmesh.ztunnel.policy import Action
from ambientmesh.ztunnel.state import StateChange
from ambientmesh.ztunnel.xds_sync import XdsSync

UID = "Kubernetes//Pod/shop/web-0"


def _workload(uid: str, name: str, ip: bytes) -> Update[wpb.Address]:
    message = wpb.Address(
        workload=wpb.Workload(uid=uid, name=name, namespace="shop", addresses=[ip])
    )
    return Update(name=uid, version="1", message=message)


def test_a_bad_address_is_left_out_the_rest_applied_and_the_response_nacked() -> None:
    sync = XdsSync()
    changes: list[StateChange] = []
    sync.subscribe(changes.append)
    good = _workload(UID, "web-0", ipaddress.ip_address("10.0.0.5").packed)
    bad = _workload("Kubernetes//Pod/shop/bad", "bad", b"\x01\x02\x03")
    with pytest.raises(InvalidInput, match="Kubernetes//Pod/shop/bad"):
        sync.apply_addresses([good, bad], [])
    assert sync.state.workload(UID) is not None
    assert sync.state.workload("Kubernetes//Pod/shop/bad") is None
    assert [sorted(c.workloads) for c in changes] == [[UID]]
    assert sync.rejected[ADDRESS_TYPE_URL] == 1
    sync.apply_addresses([], [UID])  # removals work and ACK
    assert sync.state.workload(UID) is None


def test_an_unreadable_policy_is_enforced_as_deny_everything_and_nacked() -> None:
    sync = XdsSync()
    # A StringMatch that sets no kind cannot be read: the whole policy is refused.
    unreadable = apb.Match(principals=[apb.StringMatch()])
    message = apb.Authorization(
        name="p",
        namespace="shop",
        scope=apb.NAMESPACE,
        action=apb.ALLOW,
        rules=[apb.Rule(clauses=[apb.Clause(matches=[unreadable])])],
    )
    with pytest.raises(InvalidInput, match="shop/p"):
        sync.apply_authorizations([Update(name="shop/p", version="1", message=message)], [])
    stand_in = sync.state.policy("shop/p")
    assert stand_in is not None
    assert stand_in.action is Action.DENY


async def test_wait_for_returns_what_arrives_or_none_at_the_deadline() -> None:
    sync = XdsSync()
    clock = FakeClock(autojump=True)
    assert await sync.wait_for(lambda: sync.state.workload(UID), clock=clock, seconds=5) is None
    assert clock.monotonic() == 5

    waiting = sync.wait_for(lambda: sync.state.workload(UID), clock=clock, seconds=5)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(waiting)
        await asyncio.sleep(0)  # one loop turn: the waiter is now parked on the next change
        sync.apply_addresses([_workload(UID, "web-0", bytes([10, 0, 0, 5]))], [])
    found = task.result()
    assert found is not None
    assert found.name == "web-0"
    assert clock.monotonic() == 5  # it did not wait for the deadline
