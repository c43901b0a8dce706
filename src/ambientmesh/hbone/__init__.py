"""HBONE: mutual-TLS HTTP/2 CONNECT tunnels — server, client, pool, keepalive and drain."""

from ambientmesh.hbone.client import connect
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.hbone.connection import HboneConnection
from ambientmesh.hbone.errors import StreamRefused, TlsFailed, TunnelRefused, close_reason
from ambientmesh.hbone.outbound import OutboundPlan, proxy_outbound, request_headers
from ambientmesh.hbone.pool import HbonePool, PoolKey, TunnelTarget
from ambientmesh.hbone.server import (
    ContextSource,
    Decision,
    Forward,
    Handler,
    HboneServer,
    InboundRequest,
    Reject,
    Terminate,
)
from ambientmesh.hbone.stream import TunnelStream

__all__ = [
    "ContextSource",
    "Decision",
    "Forward",
    "Handler",
    "HboneConfig",
    "HboneConnection",
    "HbonePool",
    "HboneServer",
    "InboundRequest",
    "OutboundPlan",
    "PoolKey",
    "Reject",
    "StreamRefused",
    "Terminate",
    "TlsFailed",
    "TunnelRefused",
    "TunnelStream",
    "TunnelTarget",
    "close_reason",
    "connect",
    "proxy_outbound",
    "request_headers",
]
