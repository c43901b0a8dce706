"""Finer kinds of the mesh errors that tunnels raise, each mapped to a relay close reason."""

from __future__ import annotations

from ambientmesh.errors import (
    ConnectFailed,
    IdentityError,
    MeshError,
    ProtocolError,
    ResourceClosed,
    UpstreamError,
    UpstreamReset,
    UpstreamTimeout,
)
from ambientmesh.io.result import CloseReason


class TlsFailed(ConnectFailed):
    """The TLS handshake with the peer failed (bad certificate, wrong CA, no ALPN h2)."""

    reason = "TLS"


class TunnelRefused(UpstreamError):
    """The peer answered the CONNECT with a non-2xx status."""

    reason = "HTTP_STATUS"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.response_status = status


class StreamRefused(UpstreamReset):
    """The peer refused the stream without processing it (REFUSED_STREAM or GOAWAY): safe to
    retry on another connection."""


def close_reason(error: MeshError) -> CloseReason:
    """The relay close reason an error stands for."""
    if isinstance(error, UpstreamTimeout):
        return CloseReason.CONNECT_TIMEOUT
    if isinstance(error, TlsFailed | IdentityError):
        return CloseReason.TLS_FAILED
    if isinstance(error, TunnelRefused):
        return CloseReason.HTTP_STATUS
    if isinstance(error, ConnectFailed):
        return CloseReason.CONNECT_FAILED
    if isinstance(error, ProtocolError):
        return CloseReason.PROTOCOL_ERROR
    if isinstance(error, ResourceClosed):
        return CloseReason.CANCELLED
    return CloseReason.UPSTREAM_RESET
