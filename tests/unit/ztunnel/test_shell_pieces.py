"""The small pure pieces of the ztunnel process: outcomes, PROXY v2, re-authorization,
metrics exposition, readiness, log levels, configuration and the config dump."""

from __future__ import annotations

import io
import json
import logging
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ambientmesh.errors import InvalidInput, UpstreamTimeout
from ambientmesh.identity.spiffe import Identity
from ambientmesh.io.result import CloseReason, RelayResult
from ambientmesh.testing.clock import FakeClock
from ambientmesh.ztunnel.accesslog import (
    AccessLog,
    InvalidLevel,
    configure_logging,
    log_levels,
    set_log_levels,
)
from ambientmesh.ztunnel.config import LogFormat, ZtunnelConfig, parse_duration
from ambientmesh.ztunnel.config_dump import jsonable, state_dump
from ambientmesh.ztunnel.connections import ConnectionRegistry
from ambientmesh.ztunnel.inbound import HboneRequest, InboundPlan, ProxyProtocolHeader, plan_inbound
from ambientmesh.ztunnel.metrics import ProxyMetrics
from ambientmesh.ztunnel.model import Locality, SocketAddr
from ambientmesh.ztunnel.outcomes import relay_outcome, tunnel_outcome
from ambientmesh.ztunnel.policy import Action
from ambientmesh.ztunnel.readiness import Readiness
from ambientmesh.ztunnel.state import State, StateUpdate
from ambientmesh.ztunnel.telemetry import ConnectionOutcome, Reporter, ResponseFlag
from ambientmesh.ztunnel.upstream import PROXY_V2_SIGNATURE, proxy_v2_header
from tests.unit.ztunnel.builders import addr, from_principals, identity, pod, policy, rule, state_of

# ---------------------------------------------------------------------- outcomes


def _result(reason: CloseReason, status: int | None, **kw: object) -> RelayResult:
    return RelayResult(
        bytes_received=3, bytes_sent=5, duration=0.25, reason=reason, status=status, **kw
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "status", "flag"),
    [
        (CloseReason.COMPLETED, 200, ResponseFlag.NONE),
        (CloseReason.UPSTREAM_RESET, 200, ResponseFlag.NONE),  # reset after the tunnel opened
        (CloseReason.CONNECT_TIMEOUT, None, ResponseFlag.NETWORK_POLICY),
        (CloseReason.TLS_FAILED, None, ResponseFlag.TLS_FAILURE),
        (CloseReason.PROTOCOL_ERROR, None, ResponseFlag.H2_HANDSHAKE_FAILURE),
        (CloseReason.HTTP_STATUS, 401, ResponseFlag.CONNECT),
        (CloseReason.CONNECT_FAILED, None, ResponseFlag.CONNECT),
        (CloseReason.UPSTREAM_RESET, None, ResponseFlag.CONNECT),
    ],
)
def test_tunnel_outcome_flags_only_tunnels_that_never_opened(
    reason: CloseReason, status: int | None, flag: ResponseFlag
) -> None:
    outcome = tunnel_outcome(_result(reason, status))
    assert outcome.response_flag is flag
    assert (outcome.client_to_server_bytes, outcome.server_to_client_bytes) == (3, 5)
    assert outcome.duration_ms == 250


def test_relay_outcome_carries_the_error_message() -> None:
    result = _result(
        CloseReason.CONNECT_TIMEOUT, None, error=UpstreamTimeout("timed out, maybe a NetworkPolicy")
    )
    assert relay_outcome(result).error == "timed out, maybe a NetworkPolicy"


# ---------------------------------------------------------------------- PROXY v2


def test_proxy_v2_header_ipv4_with_identity_tlv() -> None:
    header = proxy_v2_header(
        ProxyProtocolHeader(
            source=addr("10.0.0.1:40000"),
            destination=addr("10.96.0.20:80"),
            identity=identity("sleep"),
        )
    )
    assert header.startswith(PROXY_V2_SIGNATURE)
    command, family, length = struct.unpack("!BBH", header[12:16])
    assert (command, family) == (0x21, 0x11)
    body = header[16:]
    assert len(body) == length
    assert body[:12] == bytes([10, 0, 0, 1, 10, 96, 0, 20]) + struct.pack("!HH", 40000, 80)
    kind, size = struct.unpack("!BH", body[12:15])
    assert kind == 0xD0
    assert body[15 : 15 + size] == b"spiffe://cluster.local/ns/default/sa/sleep"


def test_proxy_v2_header_mixed_families_go_as_ipv6_without_identity() -> None:
    header = proxy_v2_header(
        ProxyProtocolHeader(
            source=addr("10.0.0.1:1"), destination=addr("[fd00::5]:80"), identity=None
        )
    )
    _, family, length = struct.unpack("!BBH", header[12:16])
    assert family == 0x21
    assert length == 36  # two IPv6 addresses and two ports, no TLV
    assert header[16:32] == bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1])


# ---------------------------------------------------------------------- re-authorization


def _admitted(state: State, client: str, peer: str = "10.0.0.1") -> InboundPlan:
    request = HboneRequest(
        method="CONNECT",
        authority="10.0.0.2:8080",
        local=addr("10.0.0.2:15008"),
        peer=addr(f"{peer}:40000"),
        peer_identity=identity(client),
    )
    plan = plan_inbound(state, state.workload("Kubernetes//Pod/default/server"), request)
    assert isinstance(plan, InboundPlan)
    return plan


def test_recheck_closes_exactly_the_connections_a_new_policy_denies() -> None:
    server = pod("server", "10.0.0.2")
    state = state_of(server)
    registry = ConnectionRegistry()
    closed: list[str] = []
    for client in ("sleep", "other"):
        registry.add(_admitted(state, client), lambda c=client: closed.append(c))  # type: ignore[misc]
    assert registry.recheck(state) == 0
    deny = policy(
        "deny-sleep", rule(from_principals("cluster.local/ns/default/sa/sleep")), action=Action.DENY
    )
    state.apply(StateUpdate(policies=(deny,)))
    assert registry.recheck(state) == 1
    assert closed == ["sleep"]
    assert len(registry) == 1
    [left] = list(registry)
    assert not left.denied
    state.apply(StateUpdate(removed_policies=("default/deny-sleep",)))
    assert registry.recheck(state) == 0  # nothing reopens, nothing more closes


# ---------------------------------------------------------------------- metrics


def test_metrics_expose_istio_names_with_per_series_label_sets() -> None:
    metrics = ProxyMetrics()
    state = state_of(pod("server", "10.0.0.2"))
    plan = _admitted(state, "sleep")
    metrics.opened(plan.record)
    metrics.closed(
        plan.record, ConnectionOutcome(client_to_server_bytes=7, server_to_client_bytes=9)
    )
    zoned = pod("zoned", "10.0.0.3", locality=Locality(region="eu", zone="eu-1"))
    other = _admitted(state_of(pod("server", "10.0.0.2"), zoned), "zoned", peer="10.0.0.3")
    metrics.rejected(other.record, ResponseFlag.DENY, "denied")
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    opened = families["istio_tcp_connections_opened"].samples
    assert len(opened) == 2
    assert {s.labels["response_flags"] for s in opened} == {"-"}
    plain, located = opened
    assert plain.labels["reporter"] == "destination"
    assert plain.labels["source_principal"] == "spiffe://cluster.local/ns/default/sa/sleep"
    assert "source_region" not in plain.labels  # locality labels appear only when known
    assert (located.labels["source_region"], located.labels["source_zone"]) == ("eu", "eu-1")
    received = families["istio_tcp_received_bytes"].samples
    assert sum(s.value for s in received) == 7
    failed = families["istio_tcp_connections_failed"].samples
    assert [s.labels["response_flags"] for s in failed] == ["DENY"]
    sockets = {s.labels["reporter"]: s.value for s in families["istio_tcp_sockets_open"].samples}
    assert sockets == {"destination": 0, "source": 0}
    assert "process_resident_memory_bytes" in families


# ---------------------------------------------------------------------- readiness, logging


def test_readiness_names_what_is_missing() -> None:
    synced = False
    readiness = Readiness()
    readiness.require("configuration", lambda: synced)
    readiness.require("pods", lambda: True)
    assert readiness.missing() == ["configuration"]
    assert not readiness.ready
    synced = True
    assert readiness.ready


@pytest.fixture
def restore_levels() -> Iterator[None]:
    loggers = {name: logging.getLogger(name).level for name in ("access", "ambientmesh.zt-test")}
    root = logging.getLogger().level
    yield
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().setLevel(root)


@pytest.mark.usefixtures("restore_levels")
def test_log_levels_change_by_scope_and_refuse_unknown_levels() -> None:
    levels = set_log_levels("access:off,ambientmesh.zt-test:debug")
    assert levels["access"] == "off"
    assert levels["ambientmesh.zt-test"] == "debug"
    assert log_levels()["access"] == "off"
    with pytest.raises(InvalidLevel, match="unknown log level 'chatty'"):
        set_log_levels("access:info,ambientmesh.zt-test:chatty")
    assert log_levels()["access"] == "off"  # nothing half-applied
    with pytest.raises(InvalidLevel, match="no log level given"):
        set_log_levels(" , ")


# ---------------------------------------------------------------------- configuration


def _config(**overrides: object) -> ZtunnelConfig:
    base: dict[str, object] = {
        "node": "node-1",
        "xds_address": "unix:/run/x.sock",
        "ca_address": "unix:/run/x.sock",
        "credential_dir": Path("/tmp/cred"),
        "zds_socket": Path("/tmp/zds.sock"),
    }
    return ZtunnelConfig(**(base | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"node": ""}, "needs a node name"),
        ({"xds_address": ""}, "xds_address is empty"),
        ({"trust_domain": "Not Valid"}, "trust domain"),
        ({"admin_address": ("127.0.0.1", 70000)}, "outside 0..65535"),
        ({"drain_deadline": 0}, "drain_deadline must be positive"),
        ({"secret_ttl": timedelta(seconds=5)}, "at least one minute"),
    ],
)
def test_config_refuses_bad_settings(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        _config(**overrides)


def test_durations_in_istio_spelling() -> None:
    assert parse_duration("5m", what="x") == timedelta(minutes=5)
    assert parse_duration("24h", what="x") == timedelta(hours=24)
    assert parse_duration("1.5", what="x") == timedelta(seconds=1.5)
    with pytest.raises(InvalidInput, match="--secret-ttl: 'soon' is not a duration"):
        parse_duration("soon", what="--secret-ttl")
    with pytest.raises(InvalidInput, match="must be positive"):
        parse_duration("0s", what="x")


def test_config_dump_is_plain_json() -> None:
    state = state_of(pod("server", "10.0.0.2", sa="web"), policy("p", rule()))
    dump = state_dump(state)
    text = json.dumps(dump)
    workload = dump["workloads"][0]
    assert workload["addresses"] == ["10.0.0.2"]
    assert workload["identity"] == "spiffe://cluster.local/ns/default/sa/web"
    assert workload["tunnelProtocol"] == "HBONE"
    assert dump["policies"][0]["name"] == "p"
    assert "key" not in text
    assert jsonable(SocketAddr.parse("[fd00::1]:80")) == "[fd00::1]:80"
    assert jsonable(Identity.parse("spiffe://td/ns/a/sa/b")) == "spiffe://td/ns/a/sa/b"


@pytest.mark.usefixtures("restore_levels")
def test_access_log_lines_are_json_with_log_format_json() -> None:
    stream = io.StringIO()
    root_handlers = logging.getLogger().handlers[:]
    access_handlers = logging.getLogger("access").handlers[:]
    try:
        configure_logging(LogFormat.JSON, stream=stream)
        plan = _admitted(state_of(pod("server", "10.0.0.2")), "sleep")
        log = AccessLog(clock=FakeClock(), log_format=LogFormat.JSON)
        log.complete(plan.record, ConnectionOutcome(client_to_server_bytes=4, duration_ms=12))
        log.failed(addr("10.0.0.1:1"), addr("10.0.0.2:2"), Reporter.SOURCE, "no route")
        logging.getLogger("ambientmesh.zt-test").warning("plain %s", "event")
    finally:
        logging.getLogger().handlers[:] = root_handlers
        logging.getLogger("access").handlers[:] = access_handlers
        logging.getLogger("access").propagate = True
    complete, failed, other = (json.loads(line) for line in stream.getvalue().splitlines())
    assert complete["message"] == "connection complete"
    assert complete["direction"] == "inbound"
    assert complete["bytes_recv"] == 4
    assert complete["src.identity"] == "spiffe://cluster.local/ns/default/sa/sleep"
    assert (failed["level"], failed["error"]) == ("warn", "no route")
    assert (other["scope"], other["message"]) == ("ambientmesh.zt-test", "plain event")
