"""istio_tcp_* label sets (reference 5.1) and access-log fields (reference 5.2), exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ambientmesh.ztunnel.baggage import Baggage
from ambientmesh.ztunnel.model import Locality
from ambientmesh.ztunnel.telemetry import (
    TCP_CONNECTIONS_CLOSED,
    TCP_CONNECTIONS_FAILED,
    TCP_CONNECTIONS_OPENED,
    TCP_RECEIVED_BYTES,
    TCP_SENT_BYTES,
    TCP_SOCKETS_OPEN,
    ConnectionOutcome,
    ConnectionRecord,
    Reporter,
    ResponseFlag,
    SecurityPolicy,
    access_log_fields,
    access_log_level,
    counts_as_failed,
    early_failure_fields,
    metric_bytes,
    render_json,
    render_text,
    traffic_labels,
)

from .builders import addr, host, pod, service

# Reference 5.1, verbatim and in order.
ISTIO_TRAFFIC_LABELS = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_service",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_cluster",
    "request_protocol",
    "response_flags",
    "connection_security_policy",
]

CAPTURED_V1 = pod(
    "captured-v1-5d8f9",
    "10.0.0.1",
    ns="echo",
    sa="captured",
    workload_name="captured-v1",
    canonical_name="captured",
    canonical_revision="v1",
    cluster_id="Kubernetes",
)
SERVER = pod(
    "server-7c9b",
    "10.0.1.1",
    ns="echo",
    sa="server",
    workload_name="server",
    canonical_name="server",
    canonical_revision="v2",
    cluster_id="Kubernetes",
    locality=Locality(region="eu", zone="eu-1"),
)
SERVER_SVC = service("server", "10.96.0.10", ns="echo")


def inbound_record(**overrides: object) -> ConnectionRecord:
    fields: dict[str, object] = {
        "reporter": Reporter.DESTINATION,
        "src_addr": addr("10.0.0.1:40000"),
        "dst_addr": addr("10.0.1.1:15008"),
        "hbone_authority": "10.0.1.1:8080",
        "source_workload": CAPTURED_V1,
        "source_identity": CAPTURED_V1.identity,
        "destination_workload": SERVER,
        "destination_identity": SERVER.identity,
        "destination_service": SERVER_SVC,
        "security_policy": SecurityPolicy.MUTUAL_TLS,
    }
    return ConnectionRecord(**(fields | overrides))


def test_metric_names() -> None:
    assert TCP_CONNECTIONS_OPENED == "istio_tcp_connections_opened_total"
    assert TCP_CONNECTIONS_CLOSED == "istio_tcp_connections_closed_total"
    assert TCP_RECEIVED_BYTES == "istio_tcp_received_bytes_total"
    assert TCP_SENT_BYTES == "istio_tcp_sent_bytes_total"
    assert TCP_CONNECTIONS_FAILED == "istio_tcp_connections_failed_total"
    assert TCP_SOCKETS_OPEN == "istio_tcp_sockets_open"


def test_destination_label_set_matches_istio_l4_telemetry_query() -> None:
    """Scenario 32 (TestL4Telemetry): reporter, mutual_tls, principals, workload, service."""
    labels = traffic_labels(inbound_record())
    names = [name for name, _ in labels]
    assert names[:23] == ISTIO_TRAFFIC_LABELS
    assert dict(labels) == {
        "reporter": "destination",
        "source_workload": "captured-v1",
        "source_canonical_service": "captured",
        "source_canonical_revision": "v1",
        "source_workload_namespace": "echo",
        "source_principal": "spiffe://cluster.local/ns/echo/sa/captured",
        "source_app": "captured",
        "source_version": "v1",
        "source_cluster": "Kubernetes",
        "destination_service": host("server", "echo"),
        "destination_service_namespace": "echo",
        "destination_service_name": "server",
        "destination_workload": "server",
        "destination_canonical_service": "server",
        "destination_canonical_revision": "v2",
        "destination_workload_namespace": "echo",
        "destination_principal": "spiffe://cluster.local/ns/echo/sa/server",
        "destination_app": "server",
        "destination_version": "v2",
        "destination_cluster": "Kubernetes",
        "request_protocol": "tcp",
        "response_flags": "-",
        "connection_security_policy": "mutual_tls",
        "destination_region": "eu",
        "destination_zone": "eu-1",
    }


def test_unknown_parties_are_labelled_unknown() -> None:
    record = ConnectionRecord(
        reporter=Reporter.SOURCE, src_addr=addr("10.0.0.1:1"), dst_addr=addr("192.0.2.1:443")
    )
    labels = dict(traffic_labels(record))
    assert list(labels) == ISTIO_TRAFFIC_LABELS  # no locality labels when nothing is known
    assert {v for k, v in labels.items() if k.startswith(("source_", "destination_"))} == {
        "unknown"
    }
    assert labels["connection_security_policy"] == "unknown"
    assert labels["reporter"] == "source"


def test_source_from_baggage_when_no_workload_is_known() -> None:
    """Reference 5.1: source_app is the canonical name from a workload, the workload name from
    baggage; the principal comes from the TLS peer identity."""
    record = inbound_record(
        source_workload=None,
        source_baggage=Baggage(
            namespace="remote", workload_name="app-v3", service_name="app", revision="v3", zone="z9"
        ),
    )
    labels = dict(traffic_labels(record))
    assert labels["source_workload"] == "app-v3"
    assert labels["source_canonical_service"] == "app"
    assert labels["source_app"] == "app-v3"
    assert labels["source_version"] == "v3"
    assert labels["source_cluster"] == "unknown"
    assert labels["source_principal"] == str(CAPTURED_V1.identity)
    assert labels["source_zone"] == "z9"


def test_a_known_source_workload_wins_over_baggage() -> None:
    record = inbound_record(source_baggage=Baggage(workload_name="liar", namespace="elsewhere"))
    labels = dict(traffic_labels(record))
    assert labels["source_workload"] == "captured-v1"
    assert labels["source_workload_namespace"] == "echo"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        (ResponseFlag.NONE, "-"),
        (ResponseFlag.DENY, "DENY"),
        (ResponseFlag.CONNECT, "CONNECT"),
        (ResponseFlag.TLS_FAILURE, "TLS_FAILURE"),
        (ResponseFlag.H2_HANDSHAKE_FAILURE, "H2_HANDSHAKE_FAILURE"),
        (ResponseFlag.NETWORK_POLICY, "NETWORK_POLICY"),
        (ResponseFlag.IDENTITY_ERROR, "IDENTITY_ERROR"),
        (ResponseFlag.CERT_REVOKED, "CERT_REVOKED"),
    ],
)
def test_response_flags(flag: ResponseFlag, value: str) -> None:
    assert dict(traffic_labels(inbound_record(), flag))["response_flags"] == value
    assert counts_as_failed(ConnectionOutcome(response_flag=flag)) is (
        flag is not ResponseFlag.NONE
    )


def test_metric_bytes_are_request_direction_received_response_direction_sent() -> None:
    outcome = ConnectionOutcome(client_to_server_bytes=100, server_to_client_bytes=9000)
    assert metric_bytes(outcome) == (100, 9000)


def test_access_log_fields_outbound() -> None:
    """Reference 5.2: outbound bytes_sent = client->server; dst.addr is the next hop."""
    record = ConnectionRecord(
        reporter=Reporter.SOURCE,
        src_addr=addr("10.0.0.1:40000"),
        dst_addr=addr("10.0.1.1:15008"),
        hbone_authority="10.0.1.1:8080",
        source_workload=CAPTURED_V1,
        source_identity=CAPTURED_V1.identity,
        destination_workload=SERVER,
        destination_identity=SERVER.identity,
        destination_service=SERVER_SVC,
        security_policy=SecurityPolicy.MUTUAL_TLS,
    )
    outcome = ConnectionOutcome(
        client_to_server_bytes=102, server_to_client_bytes=9137, duration_ms=15
    )
    assert access_log_fields(record, outcome) == (
        ("src.addr", "10.0.0.1:40000"),
        ("src.workload", "captured-v1-5d8f9"),
        ("src.namespace", "echo"),
        ("src.identity", "spiffe://cluster.local/ns/echo/sa/captured"),
        ("src.cluster", "Kubernetes"),
        ("dst.addr", "10.0.1.1:15008"),
        ("dst.hbone_addr", "10.0.1.1:8080"),
        ("dst.service", host("server", "echo")),
        ("dst.workload", "server-7c9b"),
        ("dst.namespace", "echo"),
        ("dst.identity", "spiffe://cluster.local/ns/echo/sa/server"),
        ("dst.cluster", "Kubernetes"),
        ("direction", "outbound"),
        ("bytes_sent", 102),
        ("bytes_recv", 9137),
        ("duration", "15ms"),
    )
    assert access_log_level(outcome) == "info"


def test_access_log_fields_inbound_plaintext_and_failure() -> None:
    """Inbound bytes_sent = server->client; identities only for mTLS; error on failure."""
    record = inbound_record(
        security_policy=SecurityPolicy.UNKNOWN,
        source_identity=None,
        hbone_authority=None,
        dst_addr=addr("10.0.1.1:8080"),
    )
    outcome = ConnectionOutcome(
        response_flag=ResponseFlag.DENY,
        client_to_server_bytes=5,
        server_to_client_bytes=7,
        error="allow policies exist, but none allowed",
    )
    fields = dict(access_log_fields(record, outcome))
    assert "src.identity" not in fields
    assert "dst.identity" not in fields
    assert "dst.hbone_addr" not in fields
    assert (fields["bytes_sent"], fields["bytes_recv"]) == (7, 5)
    assert fields["direction"] == "inbound"
    assert fields["error"] == "allow policies exist, but none allowed"
    assert access_log_level(outcome) == "error"


WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_render_text() -> None:
    fields = (
        ("src.addr", "10.0.0.1:1"),
        ("src.workload", "sleep"),
        ("bytes_sent", 3),
        ("duration", "2ms"),
    )
    assert render_text(WHEN, "info", "connection complete", fields) == (
        "2026-01-02T03:04:05.678901Z info access connection complete src.addr=10.0.0.1:1 "
        'src.workload="sleep" bytes_sent=3 duration="2ms"'
    )


def test_render_json() -> None:
    fields = early_failure_fields(
        addr("10.0.0.1:1"), addr("10.0.1.1:15008"), Reporter.DESTINATION, "ip mismatch"
    )
    line = render_json(WHEN, "warn", "connection failed", fields)
    assert json.loads(line) == {
        "level": "warn",
        "time": "2026-01-02T03:04:05.678901Z",
        "scope": "access",
        "message": "connection failed",
        "src.addr": "10.0.0.1:1",
        "dst.addr": "10.0.1.1:15008",
        "direction": "inbound",
        "error": "ip mismatch",
    }
    assert "\n" not in line


def test_quotes_in_values_are_escaped_in_text() -> None:
    text = render_text(WHEN, "error", "connection complete", (("error", 'bad "x"'),))
    assert text.endswith('error="bad \\"x\\""')
