"""Timers and limits of HBONE connections and pools (ztunnel's values by default)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ambientmesh.errors import InvalidInput
from ambientmesh.protocol import H2Settings


@dataclass(frozen=True, slots=True, kw_only=True)
class HboneConfig:
    """Everything tunable about HBONE connections, in one frozen object."""

    server_settings: H2Settings = field(default_factory=H2Settings)
    client_settings: H2Settings = field(default_factory=H2Settings.for_client)
    ping_interval: float = 10.0  # a PING every 10 s ...
    ping_timeout: float = 20.0  # ... and a connection silent for 20 s is dropped
    connect_timeout: float = 10.0  # TCP connect, TLS and HTTP/2 handshake together
    handshake_timeout: float = 10.0  # server: TLS and HTTP/2 preface of an accepted client
    response_timeout: float = 10.0  # client: waiting for the CONNECT response
    max_streams_per_connection: int = 100  # client side, also capped by the peer's SETTINGS
    pool_idle_timeout: float = 300.0  # unused pooled connections are released after 5 min
    drain_timeout: float = 30.0  # how long a graceful drain waits for open streams

    def __post_init__(self) -> None:
        for name in (
            "ping_interval",
            "ping_timeout",
            "connect_timeout",
            "handshake_timeout",
            "response_timeout",
            "pool_idle_timeout",
            "drain_timeout",
        ):
            if getattr(self, name) <= 0:
                raise InvalidInput(f"HBONE setting {name} must be positive")
        if self.max_streams_per_connection < 1:
            raise InvalidInput("HBONE setting max_streams_per_connection must be at least 1")
