"""Names of a cluster's network namespaces and interfaces, unique per cluster; pure.

    am-<cluster>                       the cluster's router (and DNS) namespace
    am-<cluster>.<node>                one per node
    am-<cluster>.<namespace>.<pod>     one per pod

Cluster, node and Kubernetes namespace names are DNS labels (no dots), so the dots make the
names unambiguous: two clusters never share a prefix, and a node never looks like a pod.
Interfaces are named inside their own namespace only, so `eth0` can repeat; the node-side end
of a pod's veth and the router-side end of a node's are ``am`` + 10 hex digits of a hash.
"""

from __future__ import annotations

import hashlib
import re

from ambientmesh.errors import InvalidInput

PREFIX = "am-"
UPLINK = "eth0"  # a pod's link to its node, and a node's link to the router
MAX_CLUSTER_NAME = 40
_NETNS_BUDGET = 240  # stay clear of NAME_MAX (255) for /run/netns and /etc/netns entries

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def validate_cluster_name(name: str) -> None:
    if len(name) > MAX_CLUSTER_NAME or not _LABEL.fullmatch(name):
        raise InvalidInput(
            f"invalid cluster name {name!r}: use at most {MAX_CLUSTER_NAME} lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )


def validate_label(what: str, name: str) -> None:
    """Raise unless `name` is a DNS-1123 label (node and Kubernetes namespace names)."""
    if len(name) > 63 or not _LABEL.fullmatch(name):
        raise InvalidInput(f"invalid {what} name {name!r}: must be a DNS-1123 label")


def validate_subdomain(what: str, name: str) -> None:
    """Raise unless `name` is a DNS-1123 subdomain (pod names)."""
    if len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        raise InvalidInput(f"invalid {what} name {name!r}: must be a DNS-1123 subdomain")


def router_netns(cluster: str) -> str:
    validate_cluster_name(cluster)
    return f"{PREFIX}{cluster}"


def node_netns(cluster: str, node: str) -> str:
    validate_label("node", node)
    return f"{router_netns(cluster)}.{node}"


def pod_netns(cluster: str, namespace: str, pod: str) -> str:
    validate_label("namespace", namespace)
    validate_subdomain("pod", pod)
    name = f"{router_netns(cluster)}.{namespace}.{pod}"
    if len(name) <= _NETNS_BUDGET:
        return name
    # Very long pod names: keep a readable head and make the tail unique.
    return f"{name[: _NETNS_BUDGET - 11]}-{_digest(name)}"


def owns_netns(cluster: str, netns: str) -> bool:
    """Whether `netns` is one of `cluster`'s namespaces (and not another cluster's)."""
    router = router_netns(cluster)
    return netns == router or netns.startswith(router + ".")


def link_name(peer_netns: str) -> str:
    """The name of the link that leads to `peer_netns`, as seen from the other side (≤ 15 chars)."""
    return "am" + _digest(peer_netns)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]
