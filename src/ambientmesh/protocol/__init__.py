"""Sans-IO HBONE: HTTP/2 CONNECT tunnels as bytes in, events out (no sockets, no clock)."""

from ambientmesh.protocol.authority import Authority, InvalidAuthority, parse_authority
from ambientmesh.protocol.client_side import ClientConnection
from ambientmesh.protocol.connection import Role, TunnelConnection
from ambientmesh.protocol.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    GoAwayReceived,
    Headers,
    PingAcknowledged,
    RequestReceived,
    RequestRejected,
    ResponseReceived,
    SettingsChanged,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from ambientmesh.protocol.frames import ErrorCode
from ambientmesh.protocol.headers import forwarded, header_value, traceparent
from ambientmesh.protocol.server_side import ServerConnection
from ambientmesh.protocol.settings import H2Settings

__all__ = [
    "Authority",
    "ClientConnection",
    "ConnectionTerminated",
    "DataReceived",
    "ErrorCode",
    "Event",
    "GoAwayReceived",
    "H2Settings",
    "Headers",
    "InvalidAuthority",
    "PingAcknowledged",
    "RequestReceived",
    "RequestRejected",
    "ResponseReceived",
    "Role",
    "ServerConnection",
    "SettingsChanged",
    "StreamEnded",
    "StreamReset",
    "TunnelConnection",
    "WindowUpdated",
    "forwarded",
    "header_value",
    "parse_authority",
    "traceparent",
]
