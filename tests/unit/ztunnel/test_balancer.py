"""Endpoint selection (reference 2.4): health, locality preference, weighted random, ports, IPs."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ambientmesh.ztunnel.balancer import Endpoint, ResolutionMode, pick_endpoint, select_ip
from ambientmesh.ztunnel.model import (
    ApplicationTunnel,
    ApplicationTunnelProtocol,
    GatewayAddress,
    HealthPolicy,
    HealthStatus,
    IpFamilies,
    LoadBalancing,
    LoadBalancingMode,
    Locality,
    LocalityScope,
    NetworkAddress,
    Workload,
    parse_ip,
)
from ambientmesh.ztunnel.state import StateUpdate

from .builders import addr, key, pod, rng, service, state_of

SOURCE = pod(
    "client",
    "10.0.0.1",
    node="node-a",
    locality=Locality(region="eu", zone="eu-1", subzone="rack-1"),
)


def _pick(
    *endpoints: Workload,
    lb: LoadBalancing | None = None,
    ports: dict[int, int] | None = None,
    port: int = 80,
    mode: ResolutionMode = ResolutionMode.STANDARD,
    seed: int = 1,
) -> Endpoint | None:
    svc = service("svc", "10.96.0.1", ports=ports, load_balancing=lb)
    state = state_of(SOURCE, svc, *endpoints)
    return pick_endpoint(state, SOURCE, svc, port, mode=mode, rng=random.Random(seed))


def _backend(name: str, *ips: str, **fields: object) -> Workload:
    fields.setdefault("backs", {key("svc"): {80: 8080}})
    return pod(name, *ips, **fields)


def test_unhealthy_endpoints_are_skipped() -> None:
    sick = _backend("sick", "10.0.1.1", status=HealthStatus.UNHEALTHY)
    assert _pick(sick) is None
    healthy = _backend("healthy", "10.0.1.2")
    for seed in range(20):
        chosen = _pick(sick, healthy, seed=seed)
        assert chosen is not None
        assert chosen.workload.name == "healthy"


def test_allow_all_health_policy_admits_unhealthy_endpoints() -> None:
    """publishNotReadyAddresses -> ALLOW_ALL (reference 2.4)."""
    sick = _backend("sick", "10.0.1.1", status=HealthStatus.UNHEALTHY)
    chosen = _pick(sick, lb=LoadBalancing(health_policy=HealthPolicy.ALLOW_ALL))
    assert chosen == Endpoint(workload=sick, port=8080)


def test_weighted_random_follows_capacity() -> None:
    """ztunnel picks at random weighted by Workload.capacity (the docs say round-robin)."""
    light = _backend("light", "10.0.1.1", capacity=1)
    heavy = _backend("heavy", "10.0.1.2", capacity=3)
    svc = service("svc", "10.96.0.1")
    state = state_of(SOURCE, svc, light, heavy)
    draws = random.Random(42)
    counts = Counter(
        chosen.workload.name
        for _ in range(4000)
        if (
            chosen := pick_endpoint(state, SOURCE, svc, 80, mode=ResolutionMode.STANDARD, rng=draws)
        )
    )
    assert counts["light"] + counts["heavy"] == 4000
    assert 0.70 < counts["heavy"] / 4000 < 0.80


def test_zero_capacity_is_never_picked_and_all_zero_means_none() -> None:
    zero = _backend("zero", "10.0.1.1", capacity=0)
    one = _backend("one", "10.0.1.2", capacity=1)
    picked = {chosen.workload.name for s in range(30) if (chosen := _pick(zero, one, seed=s))}
    assert picked == {"one"}
    assert _pick(zero) is None


def _at(name: str, ip: str, *, region: str, zone: str, node: str = "node-z") -> Workload:
    return _backend(name, ip, node=node, locality=Locality(region=region, zone=zone, subzone="x"))


LOCALITY_ENDPOINTS = (
    _at("same-zone", "10.0.1.1", region="eu", zone="eu-1"),
    _at("same-region", "10.0.1.2", region="eu", zone="eu-2"),
    _at("far", "10.0.1.3", region="us", zone="us-1"),
)


@pytest.mark.parametrize(
    ("endpoints", "lb", "allowed"),
    [
        (
            LOCALITY_ENDPOINTS,
            LoadBalancing(
                routing_preference=(LocalityScope.REGION, LocalityScope.ZONE),
                mode=LoadBalancingMode.FAILOVER,
            ),
            {"same-zone"},
        ),
        (
            LOCALITY_ENDPOINTS[1:],
            LoadBalancing(
                routing_preference=(LocalityScope.REGION, LocalityScope.ZONE),
                mode=LoadBalancingMode.FAILOVER,
            ),
            {"same-region"},
        ),
        (
            LOCALITY_ENDPOINTS[2:],
            LoadBalancing(
                routing_preference=(LocalityScope.REGION, LocalityScope.ZONE),
                mode=LoadBalancingMode.FAILOVER,
            ),
            {"far"},
        ),
        (
            LOCALITY_ENDPOINTS[1:],
            LoadBalancing(
                routing_preference=(LocalityScope.REGION, LocalityScope.ZONE),
                mode=LoadBalancingMode.STRICT,
            ),
            set(),
        ),
        (
            LOCALITY_ENDPOINTS,
            LoadBalancing(
                routing_preference=(LocalityScope.REGION, LocalityScope.ZONE),
                mode=LoadBalancingMode.STANDARD,
            ),
            {"same-zone", "same-region", "far"},
        ),
        (
            (
                *LOCALITY_ENDPOINTS,
                _at("local", "10.0.1.9", region="us", zone="us-9", node="node-a"),
            ),
            LoadBalancing(routing_preference=(LocalityScope.NODE,), mode=LoadBalancingMode.STRICT),
            {"local"},
        ),
        (
            LOCALITY_ENDPOINTS,
            LoadBalancing(routing_preference=(LocalityScope.NODE,), mode=LoadBalancingMode.STRICT),
            set(),
        ),
    ],
    ids=[
        "FAILOVER prefers the same zone",
        "FAILOVER falls back to the same region",
        "FAILOVER falls back to anything",
        "STRICT drops partial matches",
        "no mode ignores preferences",
        "internalTrafficPolicy Local (NODE STRICT) keeps the node-local pod",
        "NODE STRICT without a node-local pod has nothing",
    ],
)
def test_locality_preferences(
    endpoints: tuple[Workload, ...], lb: LoadBalancing, allowed: set[str]
) -> None:
    seen = {
        chosen.workload.name
        for seed in range(40)
        if (chosen := _pick(*endpoints, lb=lb, seed=seed)) is not None
    }
    assert seen == allowed


def test_named_port_excludes_endpoints_without_a_mapping() -> None:
    """Service targetPort 0 means the port is resolved per endpoint (named targetPort)."""
    mapped = _backend("mapped", "10.0.1.1", backs={key("svc"): {80: 9090}})
    unmapped = _backend("unmapped", "10.0.1.2", backs={key("svc"): {81: 9191}})
    for seed in range(20):
        assert _pick(mapped, unmapped, ports={80: 0}, seed=seed) == Endpoint(
            workload=mapped, port=9090
        )


def test_endpoint_mapping_wins_over_service_target_port() -> None:
    ep = _backend("ep", "10.0.1.1", backs={key("svc"): {80: 9999}})
    assert _pick(ep) == Endpoint(workload=ep, port=9999)


def test_service_target_port_is_used_without_endpoint_mapping() -> None:
    ep = _backend("ep", "10.0.1.1", backs={key("svc"): {}})
    assert _pick(ep) == Endpoint(workload=ep, port=8080)


def test_undeclared_service_port_has_no_endpoint() -> None:
    assert _pick(_backend("ep", "10.0.1.1"), port=81) is None


def test_waypoint_mode_does_not_need_the_port_when_the_endpoint_has_an_app_tunnel() -> None:
    tunnel = ApplicationTunnel(protocol=ApplicationTunnelProtocol.PROXY, port=15088)
    ep = _backend("wp", "10.0.1.1", backs={key("svc"): {}}, application_tunnel=tunnel)
    chosen = _pick(ep, port=15008, mode=ResolutionMode.WAYPOINT)
    assert chosen == Endpoint(workload=ep, port=15008)
    plain = _backend("wp2", "10.0.1.2", backs={key("svc"): {}})
    assert _pick(plain, port=15008, mode=ResolutionMode.WAYPOINT) is None


def test_addressless_endpoints_are_skipped_on_the_same_network() -> None:
    gateway = GatewayAddress(
        destination=NetworkAddress(network="west", address=parse_ip("192.0.2.1"))
    )
    same = _backend("same", network_gateway=gateway)
    assert _pick(same) is None
    remote = _backend("remote", network="west", network_gateway=gateway)
    assert _pick(remote) == Endpoint(workload=remote, port=8080)


@pytest.mark.parametrize(
    ("ips", "original", "families", "expected"),
    [
        (("10.0.1.1", "10.0.1.2"), "10.0.1.2:80", IpFamilies.AUTOMATIC, "10.0.1.2"),
        (("10.0.1.1", "fd00::1"), "[fd00::9]:80", IpFamilies.AUTOMATIC, "fd00::1"),
        (("fd00::1", "10.0.1.1"), "10.9.9.9:80", IpFamilies.AUTOMATIC, "10.0.1.1"),
        (("fd00::1",), "10.9.9.9:80", IpFamilies.AUTOMATIC, "fd00::1"),
        (("fd00::1",), "10.9.9.9:80", IpFamilies.IPV4_ONLY, None),
        ((), "10.9.9.9:80", IpFamilies.AUTOMATIC, None),
    ],
    ids=[
        "the asked-for IP if the pod owns it",
        "same family as the client",
        "same family, v4",
        "other family rather than none",
        "family restriction leaves none",
        "no addresses",
    ],
)
def test_select_ip(
    ips: tuple[str, ...], original: str, families: IpFamilies, expected: str | None
) -> None:
    workload = pod("w", *ips)
    chosen = select_ip(workload, addr(original), families)
    assert (str(chosen) if chosen else None) == expected


def test_rng_is_the_only_source_of_randomness() -> None:
    a = _backend("a", "10.0.1.1")
    b = _backend("b", "10.0.1.2")
    picks = [_pick(a, b, seed=s) for s in range(10)]
    assert picks == [_pick(a, b, seed=s) for s in range(10)]
    assert rng().random() == rng().random()


def test_a_state_change_is_seen_by_the_next_pick() -> None:
    """Candidate sets are computed once per state version; any apply invalidates them."""
    svc = service("svc", "10.96.0.1")
    a = _backend("a", "10.0.1.1")
    state = state_of(SOURCE, svc, a)

    def pick(source: Workload = SOURCE) -> Endpoint | None:
        return pick_endpoint(state, source, svc, 80, mode=ResolutionMode.STANDARD, rng=rng())

    assert pick() == Endpoint(workload=a, port=8080)
    sick = _backend("a", "10.0.1.1", status=HealthStatus.UNHEALTHY)
    state.apply(StateUpdate(workloads=(sick,)))
    assert pick() is None
    b = _backend("b", "10.0.1.2", backs={key("svc"): {80: 9999}})
    state.apply(StateUpdate(workloads=(b,)))
    assert pick() == Endpoint(workload=b, port=9999)


def test_sources_on_different_networks_see_different_candidates() -> None:
    gateway = GatewayAddress(
        destination=NetworkAddress(network="west", address=parse_ip("192.0.2.1"))
    )
    remote = _backend("remote", network="west", network_gateway=gateway)
    svc = service("svc", "10.96.0.1")
    west_source = pod("west-client", "10.1.0.1", network="west")
    state = state_of(SOURCE, west_source, svc, remote)
    assert (
        pick_endpoint(state, SOURCE, svc, 80, mode=ResolutionMode.STANDARD, rng=rng()) is not None
    )
    assert (
        pick_endpoint(state, west_source, svc, 80, mode=ResolutionMode.STANDARD, rng=rng()) is None
    )
