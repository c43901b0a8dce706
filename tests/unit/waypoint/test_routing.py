"""Where the waypoint sends a CONNECT, and what it refuses (reference 2.8, scenario 35)."""

from __future__ import annotations

from dataclasses import replace

from ambientmesh.waypoint.routing import RouteKind, WaypointRefusal, WaypointRoute, route
from ambientmesh.ztunnel.state import State, StateUpdate
from tests.unit.ztunnel.builders import (
    addr,
    identity,
    key,
    pod,
    rng,
    service,
    state_of,
    waypoint_ref,
)

WAYPOINT = pod("waypoint-0", "10.0.0.9", sa="waypoint", backs={key("waypoint"): {15008: 15008}})


def _mesh() -> State:
    return state_of(
        WAYPOINT,
        service("waypoint", "10.96.0.9", ports={15008: 15008}),
        service(
            "web",
            "10.96.0.5",
            waypoint=waypoint_ref("waypoint"),
            subject_alt_names=(identity("extra"),),
        ),
        service("other", "10.96.0.6"),
        pod("web-0", "10.0.0.5", sa="web", backs={key("web"): {80: 8080}}),
        pod("legacy-0", "10.0.0.7", mesh=False, backs={key("web"): {80: 8080}}, capacity=0),
        pod("other-0", "10.0.0.6", backs={key("other"): {80: 8080}}),
        pod("bound-0", "10.0.0.8", sa="bound", waypoint=waypoint_ref("waypoint")),
    )


def _route(state: State, authority: str) -> WaypointRoute:
    found = route(state, WAYPOINT, authority, rng())
    assert isinstance(found, WaypointRoute), found
    return found


def _refusal(state: State, authority: str) -> WaypointRefusal:
    found = route(state, WAYPOINT, authority, rng())
    assert isinstance(found, WaypointRefusal), found
    return found


def test_a_served_vip_goes_to_an_endpoint_over_a_new_tunnel() -> None:
    found = _route(_mesh(), "10.96.0.5:80")
    assert found.kind is RouteKind.HBONE
    assert found.connect_to == addr("10.0.0.5:15008")
    assert found.authority == addr("10.0.0.5:8080")  # the endpoint's target port
    assert found.expected_identities == (identity("web"), identity("extra"))
    assert found.service is not None
    assert found.service.name == "web"


def test_an_endpoint_outside_the_mesh_is_reached_in_plaintext() -> None:
    state = _mesh()
    web0 = state.workload_named("default", "web-0")
    legacy = state.workload_named("default", "legacy-0")
    assert web0 is not None
    assert legacy is not None
    # Weight the in-mesh endpoint out, so the plaintext one is picked.
    state.apply(StateUpdate(workloads=(replace(web0, capacity=0), replace(legacy, capacity=1))))
    found = _route(state, "10.96.0.5:80")
    assert found.kind is RouteKind.PLAINTEXT
    assert found.connect_to == addr("10.0.0.7:8080")
    assert found.authority is None


def test_a_pod_bound_to_the_waypoint_is_served_by_address() -> None:
    found = _route(_mesh(), "10.0.0.8:9000")
    assert found.kind is RouteKind.HBONE
    assert found.authority == addr("10.0.0.8:9000")
    assert found.service is None


def test_what_the_waypoint_does_not_serve_is_refused() -> None:
    """Istio's TestDirect: unserved VIP, unserved pod, the waypoint itself, a host name."""
    state = _mesh()
    for authority in ("10.96.0.6:80", "10.0.0.6:8080", "10.0.0.9:15021", "web.default.svc:80"):
        assert _refusal(state, authority).status == 400, authority
    assert _refusal(state, "not an authority").status == 400


def test_an_unknown_port_or_no_endpoint_is_unavailable() -> None:
    state = _mesh()
    assert _refusal(state, "10.96.0.5:81").status == 503
    lonely = state_of(
        WAYPOINT,
        service("waypoint", "10.96.0.9", ports={15008: 15008}),
        service("web", "10.96.0.5", waypoint=waypoint_ref("waypoint")),
    )
    refusal = _refusal(lonely, "10.96.0.5:80")
    assert refusal.status == 503
    assert "no healthy endpoint" in refusal.reason
