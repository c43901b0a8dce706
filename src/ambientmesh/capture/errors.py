"""Finer kinds of MeshError raised by the capture package."""

from __future__ import annotations

from ambientmesh.errors import InvalidInput, MeshError, UpstreamError


class CaptureFailed(MeshError):
    """Installing or removing capture in a pod network namespace failed; nothing is half-done."""

    status = 500
    reason = "CaptureFailed"


class NotANetworkNamespace(InvalidInput):
    """A file descriptor or path that should name a network namespace does not."""


class WorkloadRejected(UpstreamError):
    """ztunnel answered a ZDS request with an error in its ack."""

    reason = "ZdsRejected"


class NotRedirected(MeshError):
    """A connection has no original destination: it reached the listener without being captured."""

    status = 400
    reason = "NotRedirected"
