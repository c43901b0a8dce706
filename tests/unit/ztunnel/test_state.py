"""State: indexes kept right across upserts and removals, and the change reports apply returns."""

from __future__ import annotations

from ambientmesh.ztunnel.model import (
    NamespacedHostname,
    NetworkAddress,
    NetworkMode,
    parse_ip,
)
from ambientmesh.ztunnel.policy import Scope
from ambientmesh.ztunnel.state import State, StateChange, StateUpdate

from .builders import key, pod, policy, service, state_of


def at(ip: str, network: str = "") -> NetworkAddress:
    return NetworkAddress(network=network, address=parse_ip(ip))


def test_workloads_are_indexed_by_uid_address_and_name() -> None:
    a = pod("a", "10.0.0.1", "fd00::1")
    state = state_of(a)
    assert state.workload(a.uid) == a
    assert state.workload_at(at("10.0.0.1")) == a
    assert state.workload_at(at("fd00::1")) == a
    assert state.workload_at(at("10.0.0.1", network="other")) is None
    assert state.workload_named("default", "a") == a


def test_reupsert_moves_the_address_index() -> None:
    state = state_of(pod("a", "10.0.0.1"))
    moved = pod("a", "10.0.0.2")
    change = state.apply(StateUpdate(workloads=(moved,)))
    assert change.workloads == {moved.uid}
    assert state.workload_at(at("10.0.0.1")) is None
    assert state.workload_at(at("10.0.0.2")) == moved


def test_an_identical_upsert_changes_nothing() -> None:
    state = state_of(pod("a", "10.0.0.1"), service("s", "10.96.0.1"), policy("p"))
    change = state.apply(
        StateUpdate(
            workloads=(pod("a", "10.0.0.1"),),
            services=(service("s", "10.96.0.1"),),
            policies=(policy("p"),),
        )
    )
    assert change == StateChange()
    assert change.empty


def test_endpoints_come_from_workload_service_maps_even_before_the_service() -> None:
    """Reference 3.2: endpoints are derived from each Workload's `services` map."""
    backend = pod("b", "10.0.1.1", backs={key("s"): {80: 8080}})
    state = state_of(backend)
    assert state.service(key("s")) is None
    assert state.endpoints(key("s")) == (backend,)
    state.apply(StateUpdate(services=(service("s", "10.96.0.1"),)))
    assert state.is_endpoint(key("s"), backend)
    assert [s.name for s in state.services_of(backend)] == ["s"]
    # The workload stops backing the service.
    state.apply(StateUpdate(workloads=(pod("b", "10.0.1.1"),)))
    assert state.endpoints(key("s")) == ()


def test_remove_by_address_name_handles_workloads_and_services() -> None:
    a = pod("a", "10.0.0.1", backs={key("s"): {80: 8080}})
    state = state_of(a, service("s", "10.96.0.1"))
    change = state.apply(
        StateUpdate(removed_addresses=(a.uid, "default/s.default.svc.cluster.local", "nope", "x/y"))
    )
    assert change.workloads == {a.uid}
    assert change.services == {key("s")}
    assert state.workload(a.uid) is None
    assert state.workload_at(at("10.0.0.1")) is None
    assert state.workload_named("default", "a") is None
    assert state.endpoints(key("s")) == ()
    assert state.service_at(at("10.96.0.1")) is None
    assert state.services_named("s.default.svc.cluster.local") == ()


def test_shared_ip_latest_wins_and_the_other_remains_after_removal() -> None:
    old = pod("old", "10.0.0.1")
    new = pod("new", "10.0.0.1")
    state = state_of(old)
    state.apply(StateUpdate(workloads=(new,)))
    assert state.workload_at(at("10.0.0.1")) == new
    state.apply(StateUpdate(removed_addresses=(new.uid,)))
    assert state.workload_at(at("10.0.0.1")) == old


def test_host_network_workloads_are_not_indexed_by_ip() -> None:
    hostnet = pod("h", "192.168.0.10", network_mode=NetworkMode.HOST_NETWORK)
    state = state_of(hostnet)
    assert state.workload_at(at("192.168.0.10")) is None
    assert state.workload(hostnet.uid) == hostnet


def test_service_lookups_by_vip_and_host() -> None:
    here = service("api", "10.96.0.1")
    there = service("api", "10.96.0.1", ns="other")
    canonical = service("api", "10.96.0.1", ns="third", canonical=True)
    state = state_of(there, canonical, here)
    assert set(state.services_at(at("10.96.0.1"))) == {here, there, canonical}
    assert state.service_at(at("10.96.0.1"), prefer_namespace="default") == here
    assert state.service_at(at("10.96.0.1"), prefer_namespace="elsewhere") == canonical
    assert state.services_named(here.hostname) == (here,)
    assert state.address_at(at("10.96.0.1"), prefer_namespace="other") == there


def test_destination_resolves_names_and_addresses() -> None:
    svc = service("wp", "10.96.0.9")
    dns = pod("dns", hostname="db.example.com")
    w = pod("w", "10.0.0.9")
    state = state_of(svc, dns, w)
    assert state.destination(key("wp")) == svc
    assert (
        state.destination(NamespacedHostname(namespace="default", hostname="db.example.com")) == dns
    )
    assert state.destination(at("10.0.0.9")) == w
    assert state.destination(at("10.96.0.9")) == svc
    assert state.destination(key("missing")) is None


def test_policy_scope_indexes_follow_updates() -> None:
    w = pod("w", "10.0.0.1")
    state = state_of(w, policy("p", scope=Scope.NAMESPACE))
    assert [p.key for p in state.policies_for(w)] == ["default/p"]
    # Re-scoped to a selector policy that `w` does not list: it stops applying to `w`.
    change = state.apply(StateUpdate(policies=(policy("p", scope=Scope.WORKLOAD_SELECTOR),)))
    assert change.policies == {"default/p"}
    assert change.authorization_changed
    assert state.policies_for(w) == ()
    change = state.apply(StateUpdate(removed_policies=("default/p", "default/unknown")))
    assert change.policies == {"default/p"}
    assert state.policy("default/p") is None


def test_authorization_changed_only_for_policy_or_selector_list_changes() -> None:
    w = pod("w", "10.0.0.1")
    state = state_of(w)
    assert not state.apply(StateUpdate(workloads=(pod("w", "10.0.0.2"),))).authorization_changed
    assert not state.apply(StateUpdate(workloads=(pod("new", "10.0.0.3"),))).authorization_changed
    listed = pod("w", "10.0.0.2", authorization_policies=("default/strict",))
    assert state.apply(StateUpdate(workloads=(listed,))).authorization_changed


def test_dumps_are_sorted() -> None:
    state = state_of(pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), service("z"), service("y"))
    assert [w.name for w in state.all_workloads()] == ["a", "b"]
    assert [s.name for s in state.all_services()] == ["y", "z"]
    assert list(State().all_policies()) == []
