"""How a relayed connection ended: bytes each way, duration, and why it closed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ambientmesh.errors import MeshError


class CloseReason(Enum):
    """Why a relayed (or attempted) connection ended; stable strings for logs and metrics."""

    COMPLETED = "completed"  # both halves closed cleanly
    DOWNSTREAM_RESET = "downstream_reset"  # the accepted side reset or broke
    UPSTREAM_RESET = "upstream_reset"  # the far side (socket or tunnel) reset or broke
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECT_FAILED = "connect_failed"
    TLS_FAILED = "tls_failed"  # handshake failed or the peer's identity was not the expected one
    HTTP_STATUS = "http_status"  # the tunnel was answered with a non-2xx status
    PROTOCOL_ERROR = "protocol_error"
    CANCELLED = "cancelled"  # we aborted it (shutdown, drain deadline)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayResult:
    """``bytes_received`` came from the downstream (accepted) side and went upstream;
    ``bytes_sent`` went back to the downstream side (Istio's received/sent perspective)."""

    bytes_received: int
    bytes_sent: int
    duration: float
    reason: CloseReason
    error: MeshError | None = None
    status: int | None = None  # the CONNECT response status, when there was one

    @property
    def ok(self) -> bool:
        return self.reason is CloseReason.COMPLETED
