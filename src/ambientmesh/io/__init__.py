"""Fast byte relays and the socket options and factories of the data path."""

from ambientmesh.io.relay import (
    READ_BUFFER_SIZE,
    ZERO_COPY_WRITE,
    Relay,
    RelaySide,
    abort_with_reset,
    relay_sockets,
    shared_read_buffer,
)
from ambientmesh.io.result import CloseReason, RelayResult
from ambientmesh.io.sockets import (
    ZTUNNEL_MARK,
    SocketAddress,
    SocketFactory,
    TcpSocketFactory,
    family_of,
    set_keepalive,
    set_mark,
    set_nodelay,
    set_reset_on_close,
    set_transparent,
)

__all__ = [
    "READ_BUFFER_SIZE",
    "ZERO_COPY_WRITE",
    "ZTUNNEL_MARK",
    "CloseReason",
    "Relay",
    "RelayResult",
    "RelaySide",
    "SocketAddress",
    "SocketFactory",
    "TcpSocketFactory",
    "abort_with_reset",
    "family_of",
    "relay_sockets",
    "set_keepalive",
    "set_mark",
    "set_nodelay",
    "set_reset_on_close",
    "set_transparent",
    "shared_read_buffer",
]
