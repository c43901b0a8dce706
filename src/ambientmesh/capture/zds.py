"""ZDS, the node agent to ztunnel hand-off of pod network namespaces (reference 2.7): public API.

The agent runs a `ZdsServer`; ztunnel runs a `ZdsClient` with a `WorkloadHandler`. Messages are
`istio.workload.zds` protobufs, one per SOCK_SEQPACKET datagram; see docs/capture.md.
"""

from __future__ import annotations

from ambientmesh.capture.zds_client import PodWorkload, WorkloadHandler, ZdsClient
from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.capture.zds_server import ZdsPod, ZdsServer

# The socket path Istio uses; ours lives under the cluster's run directory (docs/capture.md).
DEFAULT_SOCKET = "/var/run/ztunnel/ztunnel.sock"

__all__ = [
    "DEFAULT_SOCKET",
    "PodWorkload",
    "WorkloadHandler",
    "WorkloadInfo",
    "ZdsClient",
    "ZdsPod",
    "ZdsServer",
]
