"""How a relayed connection ended, in telemetry terms: response flag, bytes, duration, error."""

from __future__ import annotations

from ambientmesh.io.result import CloseReason, RelayResult
from ambientmesh.ztunnel.telemetry import ConnectionOutcome, ResponseFlag

# Why a tunnel could not be opened -> the flag ztunnel reports (docs/ztunnel.md, outbound).
_OPEN_FAILURES = {
    CloseReason.CONNECT_TIMEOUT: ResponseFlag.NETWORK_POLICY,
    CloseReason.TLS_FAILED: ResponseFlag.TLS_FAILURE,
    CloseReason.PROTOCOL_ERROR: ResponseFlag.H2_HANDSHAKE_FAILURE,
}


def tunnel_outcome(result: RelayResult) -> ConnectionOutcome:
    """The outcome of an outbound HBONE connection: a failure flag only if the tunnel never
    opened (no 2xx to the CONNECT); once open, resets are reported as errors without a flag."""
    opened = result.status is not None and 200 <= result.status < 300
    flag = ResponseFlag.NONE
    if not opened and result.reason is not CloseReason.COMPLETED:
        flag = _OPEN_FAILURES.get(result.reason, ResponseFlag.CONNECT)
    return relay_outcome(result, flag)


def relay_outcome(result: RelayResult, flag: ResponseFlag = ResponseFlag.NONE) -> ConnectionOutcome:
    """The outcome of a relay between two established connections."""
    return ConnectionOutcome(
        response_flag=flag,
        client_to_server_bytes=result.bytes_received,
        server_to_client_bytes=result.bytes_sent,
        duration_ms=int(result.duration * 1000),
        error=result.error.message if result.error is not None else None,
    )
