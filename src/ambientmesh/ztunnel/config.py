"""The settings of one ztunnel process, built once from flags and environment, then frozen."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ambientmesh.errors import IdentityError, InvalidInput
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.identity.spiffe import check_trust_domain
from ambientmesh.ztunnel.model import DEFAULT_TRUST_DOMAIN

ADMIN_PORT = 15000
METRICS_PORT = 15020
READINESS_PORT = 15021
DEFAULT_CLUSTER_ID = "Kubernetes"  # Istio's CLUSTER_ID default


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class ZtunnelConfig:
    """Everything a ztunnel needs to know before it starts; nothing here changes at run time."""

    node: str
    # Discovery and the certificate service: ``unix:/path`` or ``host:port`` (mTLS either way).
    xds_address: str
    ca_address: str
    # The node credential: cert-chain.pem, key.pem, root-cert.pem (Istio's file names).
    credential_dir: Path
    # The node agent's ZDS socket.
    zds_socket: Path
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    cluster_domain: str = "cluster.local"  # DNS suffix of services (no DNS proxy yet)
    cluster_id: str = DEFAULT_CLUSTER_ID
    network: str = ""
    admin_address: tuple[str, int] = ("127.0.0.1", ADMIN_PORT)  # localhost only, as ztunnel
    metrics_address: tuple[str, int] = ("0.0.0.0", METRICS_PORT)
    readiness_address: tuple[str, int] = ("0.0.0.0", READINESS_PORT)
    log_format: LogFormat = LogFormat.TEXT
    # CONNECTION_TERMINATION_DEADLINE: how long SIGTERM waits for live connections.
    drain_deadline: float = 5.0
    # How long a connection waits for its pod's Workload to arrive from discovery.
    workload_wait: float = 5.0
    # How long a newly handed-over pod waits for the first discovery sync before listening.
    first_sync_wait: float = 10.0
    # How long a connection waits for its certificate (the CA may be slow or away).
    certificate_wait: float = 10.0
    connect_timeout: float = 10.0  # TCP connect to an application or a plaintext destination
    secret_ttl: timedelta = timedelta(hours=24)  # SECRET_TTL: lifetime asked of the CA
    hbone: HboneConfig = field(default_factory=HboneConfig)

    def __post_init__(self) -> None:
        if not self.node:
            raise InvalidInput("ztunnel needs a node name (--node)")
        for name in ("xds_address", "ca_address"):
            if not getattr(self, name):
                raise InvalidInput(f"ztunnel setting {name} is empty")
        try:
            check_trust_domain(self.trust_domain)
        except IdentityError as error:
            raise InvalidInput(f"ztunnel setting trust_domain: {error.message}") from None
        for name in ("admin_address", "metrics_address", "readiness_address"):
            _, port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise InvalidInput(f"ztunnel setting {name}: port {port} is outside 0..65535")
        for name in (
            "drain_deadline",
            "workload_wait",
            "first_sync_wait",
            "certificate_wait",
            "connect_timeout",
        ):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"ztunnel setting {name} must be positive")
        if self.secret_ttl < timedelta(minutes=1):
            raise InvalidInput("ztunnel setting secret_ttl must be at least one minute")


def parse_duration(text: str, *, what: str) -> timedelta:
    """Istio's duration spelling: ``90s``, ``5m``, ``24h``, or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise InvalidInput(f"{what}: {text!r} is not a duration like 90s, 5m or 24h") from None
    if seconds <= 0:
        raise InvalidInput(f"{what}: {text!r} must be positive")
    return timedelta(seconds=seconds)
