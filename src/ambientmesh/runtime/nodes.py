"""The Node objects the runtime registers, one per node namespace; pure builders plus the write.

A node is named `node-<i>`, labelled `kubernetes.io/hostname` and `kubernetes.io/os`, carries
its pod CIDR, its address (InternalIP) and annotation `ambientmesh.io/netns` naming its network
namespace (usable with `ip netns exec`), and reports condition Ready.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.resources import kinds
from ambientmesh.runtime.network import NodeNetwork
from ambientmesh.runtime.podstatus import rfc3339
from ambientmesh.runtime.writes import write_status

NETNS_ANNOTATION = "ambientmesh.io/netns"
NODE = kinds.lookup("v1", "Node")


def node_name(index: int) -> str:
    return f"node-{index}"


def node_object(node: NodeNetwork) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux"},
            "annotations": {NETNS_ANNOTATION: node.netns},
        },
        "spec": {"podCIDR": str(node.pod_subnet), "podCIDRs": [str(node.pod_subnet)]},
    }


def node_status(node: NodeNetwork, *, now: datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "addresses": [
            {"type": "InternalIP", "address": str(node.ip)},
            {"type": "Hostname", "address": node.name},
        ],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
    }


async def register(client: AsyncApiClient, nodes: list[NodeNetwork], *, now: datetime) -> None:
    """Create or update the Node objects of `nodes` and delete any other Node (an earlier run
    with more nodes): a pod bound to a node that is gone never runs."""
    await client.apply([node_object(node) for node in nodes])
    for node in nodes:
        await write_status(client, node_object(node), node_status(node, now=now))
    wanted = {node.name for node in nodes}
    for existing in (await client.list(NODE)).items:
        if existing["metadata"]["name"] not in wanted:
            await client.delete(NODE, existing["metadata"]["name"])
