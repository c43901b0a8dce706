"""The metadata headers of an HBONE CONNECT: ``baggage``, ``forwarded``, ``traceparent``.

Reference 1.5.

``baggage`` describes a workload for telemetry only; it is never trusted for authorization.
``forwarded`` carries the client address and the service it addressed; the server uses ``host=``
only to choose which of its own services to report. ``traceparent`` correlates one connection
across ztunnel logs; it is random and never sampled.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ambientmesh.ztunnel.model import Service, SocketAddr, Workload, WorkloadType

BAGGAGE = "baggage"
FORWARDED = "forwarded"
TRACEPARENT = "traceparent"
X_FORWARDED_NETWORK = "x-forwarded-network"

_WORKLOAD_KEYS = {f"k8s.{kind.value}.name" for kind in WorkloadType}


@dataclass(frozen=True, slots=True, kw_only=True)
class Baggage:
    """Peer metadata carried in ``baggage``; None where the sender did not say."""

    cluster_id: str | None = None
    namespace: str | None = None
    workload_name: str | None = None
    service_name: str | None = None
    revision: str | None = None
    region: str | None = None
    zone: str | None = None

    @classmethod
    def of(cls, workload: Workload) -> Baggage:
        """What a workload says about itself: canonical service and revision, locality."""
        return cls(
            cluster_id=workload.cluster_id or None,
            namespace=workload.namespace or None,
            workload_name=workload.workload_name or None,
            service_name=workload.canonical_name or None,
            revision=workload.canonical_revision or None,
            region=workload.locality.region or None,
            zone=workload.locality.zone or None,
        )


def format_baggage(baggage: Baggage, workload_type: WorkloadType) -> str:
    """``k8s.cluster.name=…,k8s.namespace.name=…,k8s.<type>.name=…,service.name=…,…``; empty
    values are left out."""
    pairs = (
        ("k8s.cluster.name", baggage.cluster_id),
        ("k8s.namespace.name", baggage.namespace),
        (f"k8s.{workload_type.value}.name", baggage.workload_name),
        ("service.name", baggage.service_name),
        ("service.version", baggage.revision),
        ("cloud.region", baggage.region),
        ("cloud.availability_zone", baggage.zone),
    )
    return ",".join(f"{key}={value}" for key, value in pairs if value)


def workload_baggage(workload: Workload) -> str:
    return format_baggage(Baggage.of(workload), workload.workload_type)


def parse_baggage(values: Iterable[str]) -> Baggage:
    """Read every ``baggage`` header value; unknown keys and malformed members are ignored
    (telemetry-only data must never fail a connection)."""
    found: dict[str, str | None] = {}
    for value in values:
        for member in value.split(","):
            key, sep, raw = member.partition("=")
            if not sep:
                continue
            # W3C baggage members may carry ";property" suffixes; we want only the value.
            text = raw.split(";", 1)[0].strip() or None
            key = key.strip()
            if key in _WORKLOAD_KEYS:
                key = "workload"
            found[key] = text
    return Baggage(
        cluster_id=found.get("k8s.cluster.name"),
        namespace=found.get("k8s.namespace.name"),
        workload_name=found.get("workload"),
        service_name=found.get("service.name"),
        revision=found.get("service.version"),
        region=found.get("cloud.region"),
        zone=found.get("cloud.availability_zone"),
    )


def format_forwarded(client: SocketAddr, service: Service | None) -> str:
    """``for="<client ip:port>"``, plus ``;host=<hostname>`` of the service the client addressed."""
    value = f'for="{client}"'
    return value if service is None else f"{value};host={service.hostname}"


def parse_forwarded_host(value: str) -> str | None:
    """The ``host=`` parameter of the first element of a ``forwarded`` header, if any."""
    first = value.split(",", 1)[0]
    for pair in first.split(";"):
        key, sep, raw = pair.partition("=")
        if sep and key.strip().lower() == "host":
            host = raw.strip().strip('"')
            return host or None
    return None


_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceParent:
    """A W3C trace context that identifies one proxied connection in logs."""

    trace_id: int
    parent_id: int
    flags: int = 0

    @classmethod
    def generate(cls, rng: random.Random) -> TraceParent:
        # W3C: all-zero ids are invalid; 1 + randrange keeps them non-zero.
        return cls(trace_id=1 + rng.randrange(2**128 - 1), parent_id=1 + rng.randrange(2**64 - 1))

    @classmethod
    def parse(cls, value: str) -> TraceParent | None:
        """The header's value if well formed (exactly 55 characters, version 00), else None."""
        match = _TRACEPARENT.fullmatch(value.strip()) if len(value.strip()) == 55 else None
        if match is None:
            return None
        trace_id, parent_id = int(match[1], 16), int(match[2], 16)
        if trace_id == 0 or parent_id == 0:
            return None
        return cls(trace_id=trace_id, parent_id=parent_id, flags=int(match[3], 16))

    @property
    def header(self) -> str:
        return f"00-{self.trace_id:032x}-{self.parent_id:016x}-{self.flags:02x}"

    @property
    def span_id(self) -> str:
        """The id ztunnel logs show for the connection (``outbound{id=…}``)."""
        return f"{self.trace_id:032x}"


def connect_headers(
    source: Workload, client: SocketAddr, service: Service | None, trace: TraceParent
) -> tuple[tuple[str, str], ...]:
    """The headers ztunnel sends on every outbound CONNECT (reference 1.5), in a fixed order."""
    headers = [
        (FORWARDED, format_forwarded(client, service)),
        (TRACEPARENT, trace.header),
    ]
    baggage = workload_baggage(source)
    if baggage:
        headers.insert(0, (BAGGAGE, baggage))
    return tuple(headers)
