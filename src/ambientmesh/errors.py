"""The one exception tree: every error that crosses a module boundary is a MeshError.

    MeshError
    ├── InvalidInput            bad input from a user: a manifest, a CLI argument, a request (400)
    │   └── ValidationFailed    one or more documents failed validation; carries every issue
    ├── NotFound                the named object does not exist (404)
    ├── AlreadyExists           create of an object that exists (409)
    ├── Conflict                stale resourceVersion: someone else wrote first (409)
    ├── Gone                    a watch asked for history that was compacted away (410)
    ├── Unavailable             a dependency is not ready or not reachable (503)
    ├── IdentityError           a certificate, CSR or SPIFFE ID that cannot be trusted
    │   └── NotAuthorized       a caller proved who it is but may not do this (403)
    ├── PolicyDenied            authorization refused a connection or request (401/403)
    ├── ProtocolError           a peer or we broke a wire protocol
    │   ├── LocalProtocolError
    │   └── RemoteProtocolError
    ├── UpstreamError           the next hop failed
    │   ├── ConnectFailed
    │   ├── UpstreamTimeout
    │   └── UpstreamReset
    └── StreamError
        ├── ResourceClosed      we closed it ourselves
        └── ResourceBroken      the peer or the network broke it

Each class knows the HTTP status it implies at an HTTP edge and a stable ``reason``
string for logs and telemetry. Messages are written for operators: say what is wrong
and, where it helps, what to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class MeshError(Exception):
    """Root of every error ambientmesh raises across a module boundary."""

    status: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(MeshError):
    """Input from a user (manifest, CLI argument, HTTP request) is malformed."""

    status = 400
    reason = "BadRequest"


class ValidationFailed(InvalidInput):
    """One or more documents are invalid; ``issues`` lists every problem found."""

    status = 422
    reason = "Invalid"

    def __init__(self, issues: Sequence[str]) -> None:
        self.issues: tuple[str, ...] = tuple(issues)
        super().__init__("\n".join(self.issues))


class NotFound(MeshError):
    status = 404
    reason = "NotFound"


class AlreadyExists(MeshError):
    status = 409
    reason = "AlreadyExists"


class Conflict(MeshError):
    """An update carried a resourceVersion that is no longer current."""

    status = 409
    reason = "Conflict"


class Gone(MeshError):
    """A watch asked to resume from history that no longer exists."""

    status = 410
    reason = "Expired"


class Unavailable(MeshError):
    status = 503
    reason = "ServiceUnavailable"


class IdentityError(MeshError):
    """A certificate, CSR, chain or SPIFFE identity cannot be trusted or parsed."""

    status = 400
    reason = "IdentityError"


class NotAuthorized(IdentityError):
    """The caller is authenticated but not allowed to do what it asked."""

    status = 403
    reason = "Forbidden"


class PolicyDenied(MeshError):
    """Authorization refused a connection or request."""

    status = 401
    reason = "DENY"


class ProtocolError(MeshError):
    """A wire protocol was violated. ``error_code`` is the HTTP/2 code it maps to."""

    status = 400
    reason = "ProtocolError"

    def __init__(self, message: str, *, error_code: int = 0x1) -> None:
        super().__init__(message)
        self.error_code = error_code


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class UpstreamError(MeshError):
    status = 503
    reason = "CONNECT"


class ConnectFailed(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    status = 504
    reason = "TIMEOUT"


class UpstreamReset(UpstreamError):
    pass


class StreamError(MeshError):
    pass


class ResourceClosed(StreamError):
    """The stream was closed by our own side."""

    reason = "Closed"


class ResourceBroken(StreamError):
    """The peer or the network broke the stream."""

    reason = "Broken"
