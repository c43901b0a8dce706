"""Connection records turned into ``istio_tcp_*`` label sets and access-log fields (reference 5).

Pure: the shell counts bytes and measures durations, then asks this module what to label and
what to log. Metrics always count client→server as *received* and server→client as *sent*; the
access log counts from the logging ztunnel's side (outbound ``bytes_sent`` = client→server,
inbound ``bytes_sent`` = server→client).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.baggage import Baggage
from ambientmesh.ztunnel.model import Service, SocketAddr, Workload

TCP_CONNECTIONS_OPENED = "istio_tcp_connections_opened_total"
TCP_CONNECTIONS_CLOSED = "istio_tcp_connections_closed_total"
TCP_RECEIVED_BYTES = "istio_tcp_received_bytes_total"
TCP_SENT_BYTES = "istio_tcp_sent_bytes_total"
TCP_CONNECTIONS_FAILED = "istio_tcp_connections_failed_total"  # unstable upstream
TCP_SOCKETS_OPEN = "istio_tcp_sockets_open"  # gauge labelled by `reporter` only

UNKNOWN = "unknown"

# The traffic label set of reference 5.1, in order. Locality labels follow only when known.
TRAFFIC_LABEL_NAMES = (
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
)
LOCALITY_LABEL_NAMES = ("source_region", "source_zone", "destination_region", "destination_zone")


class Reporter(enum.Enum):
    SOURCE = "source"  # the outbound ztunnel
    DESTINATION = "destination"  # the inbound ztunnel


class SecurityPolicy(enum.Enum):
    MUTUAL_TLS = "mutual_tls"  # HBONE, on both reporters (unlike Envoy sidecars)
    UNKNOWN = "unknown"  # plaintext


class ResponseFlag(enum.Enum):
    NONE = "-"
    DENY = "DENY"  # authorization refused it
    CONNECT = "CONNECT"  # the upstream connection failed
    TLS_FAILURE = "TLS_FAILURE"
    H2_HANDSHAKE_FAILURE = "H2_HANDSHAKE_FAILURE"
    NETWORK_POLICY = "NETWORK_POLICY"  # connecting to :15008 timed out
    IDENTITY_ERROR = "IDENTITY_ERROR"  # no certificate for the identity
    CERT_REVOKED = "CERT_REVOKED"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRecord:
    """Who talked to whom, as one ztunnel saw it. Built by plans; outcome-independent."""

    reporter: Reporter
    src_addr: SocketAddr
    # The actual next hop (``pod:15008`` on outbound HBONE; the app address on inbound).
    dst_addr: SocketAddr
    # The CONNECT :authority, for HBONE.
    hbone_authority: str | None = None
    source_workload: Workload | None = None
    source_identity: Identity | None = None
    # What the peer said about itself in ``baggage`` (inbound only; telemetry, never authz).
    source_baggage: Baggage | None = None
    destination_workload: Workload | None = None
    destination_identity: Identity | None = None
    destination_service: Service | None = None
    security_policy: SecurityPolicy = SecurityPolicy.UNKNOWN

    @property
    def direction(self) -> str:
        return "outbound" if self.reporter is Reporter.SOURCE else "inbound"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOutcome:
    """How it ended: measured by the shell."""

    response_flag: ResponseFlag = ResponseFlag.NONE
    client_to_server_bytes: int = 0
    server_to_client_bytes: int = 0
    duration_ms: int = 0
    error: str | None = None


def _value(text: str | None) -> str:
    return text or UNKNOWN


def _source_labels(record: ConnectionRecord) -> dict[str, str]:
    labels = dict.fromkeys(TRAFFIC_LABEL_NAMES[1:9], UNKNOWN)
    baggage = record.source_baggage
    if baggage is not None:
        # Baggage has no canonical name: `source_app` falls back to the workload name.
        labels.update(
            source_workload=_value(baggage.workload_name),
            source_canonical_service=_value(baggage.service_name),
            source_canonical_revision=_value(baggage.revision),
            source_workload_namespace=_value(baggage.namespace),
            source_app=_value(baggage.workload_name),
            source_version=_value(baggage.revision),
            source_cluster=_value(baggage.cluster_id),
        )
    if record.source_identity is not None:
        labels["source_principal"] = str(record.source_identity)
    workload = record.source_workload
    if workload is not None:  # a workload found by address is more reliable than baggage
        labels.update(
            source_workload=_value(workload.workload_name),
            source_canonical_service=_value(workload.canonical_name),
            source_canonical_revision=_value(workload.canonical_revision),
            source_workload_namespace=_value(workload.namespace),
            source_principal=str(workload.identity),
            source_app=_value(workload.canonical_name),
            source_version=_value(workload.canonical_revision),
            source_cluster=_value(workload.cluster_id),
        )
    return labels


def _destination_labels(record: ConnectionRecord) -> dict[str, str]:
    labels = dict.fromkeys(TRAFFIC_LABEL_NAMES[9:20], UNKNOWN)
    service = record.destination_service
    if service is not None:
        labels.update(
            destination_service=service.hostname,
            destination_service_namespace=service.namespace,
            destination_service_name=service.name,
        )
    workload = record.destination_workload
    if workload is not None:
        labels.update(
            destination_workload=_value(workload.workload_name),
            destination_canonical_service=_value(workload.canonical_name),
            destination_canonical_revision=_value(workload.canonical_revision),
            destination_workload_namespace=_value(workload.namespace),
            destination_principal=str(workload.identity),
            destination_app=_value(workload.canonical_name),
            destination_version=_value(workload.canonical_revision),
            destination_cluster=_value(workload.cluster_id),
        )
    return labels


def _locality_labels(record: ConnectionRecord) -> list[tuple[str, str]]:
    source, baggage, dest = (
        record.source_workload,
        record.source_baggage,
        record.destination_workload,
    )
    values = (
        source.locality.region if source else (baggage.region if baggage else None),
        source.locality.zone if source else (baggage.zone if baggage else None),
        dest.locality.region if dest else None,
        dest.locality.zone if dest else None,
    )
    return [
        (name, value) for name, value in zip(LOCALITY_LABEL_NAMES, values, strict=True) if value
    ]


def traffic_labels(
    record: ConnectionRecord, flag: ResponseFlag = ResponseFlag.NONE
) -> tuple[tuple[str, str], ...]:
    """The ``istio_tcp_*`` label set for ``record``: the 23 names of reference 5.1 in order,
    then the locality labels that are known."""
    labels = {
        "reporter": record.reporter.value,
        **_source_labels(record),
        **_destination_labels(record),
        "request_protocol": "tcp",
        "response_flags": flag.value,
        "connection_security_policy": record.security_policy.value,
    }
    return (*((name, labels[name]) for name in TRAFFIC_LABEL_NAMES), *_locality_labels(record))


def metric_bytes(outcome: ConnectionOutcome) -> tuple[int, int]:
    """``(received, sent)`` for ``istio_tcp_received/sent_bytes_total``: request direction first."""
    return outcome.client_to_server_bytes, outcome.server_to_client_bytes


def counts_as_failed(outcome: ConnectionOutcome) -> bool:
    """Whether ``istio_tcp_connections_failed_total`` counts it: any flag other than ``-``."""
    return outcome.response_flag is not ResponseFlag.NONE


# ---------------------------------------------------------------------- access log

LogValue: TypeAlias = str | int


def access_log_fields(
    record: ConnectionRecord, outcome: ConnectionOutcome
) -> tuple[tuple[str, LogValue], ...]:
    """The fields of a "connection complete" line (reference 5.2), only those that are known."""
    mtls = record.security_policy is SecurityPolicy.MUTUAL_TLS
    src, dst, service = (
        record.source_workload,
        record.destination_workload,
        record.destination_service,
    )
    outbound = record.reporter is Reporter.SOURCE
    sent, recv = (
        (outcome.client_to_server_bytes, outcome.server_to_client_bytes)
        if outbound
        else (outcome.server_to_client_bytes, outcome.client_to_server_bytes)
    )
    src_identity = record.source_identity or (src.identity if src and outbound else None)
    dst_identity = record.destination_identity or (dst.identity if dst else None)
    fields: list[tuple[str, LogValue | None]] = [
        ("src.addr", str(record.src_addr)),
        ("src.workload", src.name if src else None),
        ("src.namespace", src.namespace if src else (record.source_baggage or Baggage()).namespace),
        ("src.identity", str(src_identity) if mtls and src_identity else None),
        ("src.cluster", src.cluster_id if src else None),
        ("dst.addr", str(record.dst_addr)),
        ("dst.hbone_addr", record.hbone_authority),
        ("dst.service", service.hostname if service else None),
        ("dst.workload", dst.name if dst else None),
        ("dst.namespace", dst.namespace if dst else None),
        ("dst.identity", str(dst_identity) if mtls and dst_identity else None),
        ("dst.cluster", dst.cluster_id if dst else None),
        ("direction", record.direction),
        ("bytes_sent", sent),
        ("bytes_recv", recv),
        ("duration", f"{outcome.duration_ms}ms"),
        ("error", outcome.error),
    ]
    return tuple((name, value) for name, value in fields if value not in (None, ""))


def access_log_level(outcome: ConnectionOutcome) -> str:
    return "error" if outcome.error or outcome.response_flag is not ResponseFlag.NONE else "info"


def early_failure_fields(
    src_addr: SocketAddr, dst_addr: SocketAddr, reporter: Reporter, error: str
) -> tuple[tuple[str, LogValue], ...]:
    """The fields of a "connection failed" warning, for failures before any context exists."""
    direction = "outbound" if reporter is Reporter.SOURCE else "inbound"
    return (
        ("src.addr", str(src_addr)),
        ("dst.addr", str(dst_addr)),
        ("direction", direction),
        ("error", error),
    )


# Addresses print bare, as ztunnel's logs show them; other strings are quoted.
_BARE = frozenset({"src.addr", "dst.addr", "dst.hbone_addr"})


def render_text(
    when: datetime, level: str, message: str, fields: tuple[tuple[str, LogValue], ...]
) -> str:
    """One text line: ``<time> <level> access <message> key=value ...``."""
    parts = [_timestamp(when), level, "access", message]
    for name, value in fields:
        shown = value if isinstance(value, int) or name in _BARE else json.dumps(value)
        parts.append(f"{name}={shown}")
    return " ".join(parts)


def render_json(
    when: datetime, level: str, message: str, fields: tuple[tuple[str, LogValue], ...]
) -> str:
    """One JSON object per line, for ``--log-format json``."""
    document: dict[str, LogValue] = {
        "level": level,
        "time": _timestamp(when),
        "scope": "access",
        "message": message,
    }
    document.update(fields)
    return json.dumps(document, separators=(",", ":"))


def _timestamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
