"""The ambient inputs, and the indexes that tell which outputs one changed object reaches.

``Inputs.record`` stores the facts of one object and marks in a ``Dirty`` what may depend on
them, through indexes of pods by namespace, node, label and service account, of services and
ServiceEntries by namespace, and of who consulted which waypoint.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient import services as svc
from ambientmesh.controlplane.ambient import waypoints as wp
from ambientmesh.controlplane.ambient import workloads as wl
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import (
    GatewayFacts,
    Key,
    Labels,
    NamespaceFacts,
    NodeFacts,
    PeerAuthFacts,
    PodFacts,
    PolicyFacts,
    ServiceEntryFacts,
    ServiceFacts,
    read_authorization_policy,
    read_gateway,
    read_meta,
    read_peer_authentication,
    read_pod,
    read_service,
    read_service_entry,
    selector_matches,
)
from ambientmesh.proto import workload_pb2 as wpb

# The kinds the ambient computation reads.
KINDS = (
    "Namespace",
    "Node",
    "Pod",
    "Service",
    "Gateway",
    "AuthorizationPolicy",
    "PeerAuthentication",
    "ServiceEntry",
)
_EMPTY: Labels = {}
F = TypeVar("F")
K = TypeVar("K", str, Key)
Recorder = Callable[[Key, Mapping[str, Any] | None, "Dirty"], None]


@dataclass(slots=True)
class Dirty:
    """The outputs that recorded changes may have changed, to rebuild."""

    pods: set[Key] = field(default_factory=set)
    services: set[Key] = field(default_factory=set)
    entries: set[Key] = field(default_factory=set)
    policies: set[Key] = field(default_factory=set)
    peer_auth: bool = False


class Inputs:
    """Every input object's facts by key, and the indexes over them."""

    def __init__(self, config: MeshConfig) -> None:
        self.config = config
        self.namespaces: dict[str, NamespaceFacts] = {}
        self.nodes: dict[str, NodeFacts] = {}
        self.pods: dict[Key, PodFacts] = {}
        self.services: dict[Key, ServiceFacts] = {}
        self.gateways: dict[Key, GatewayFacts] = {}
        self.policies: dict[Key, PolicyFacts] = {}
        self.peer_auths: dict[Key, PeerAuthFacts] = {}
        self.entries: dict[Key, ServiceEntryFacts] = {}
        self._pods_by_ns: dict[str, set[Key]] = defaultdict(set)
        self._pods_by_node: dict[str, set[Key]] = defaultdict(set)
        self._pods_by_label: dict[tuple[str, str], set[Key]] = defaultdict(set)
        self._pods_by_account: dict[Key, set[Key]] = defaultdict(set)
        self._services_by_ns: dict[str, set[Key]] = defaultdict(set)
        self._entries_by_ns: dict[str, set[Key]] = defaultdict(set)
        self._selector_policies_by_ns: dict[str, set[Key]] = defaultdict(set)
        self._waypoint_users: dict[Key, set[tuple[str, Key]]] = defaultdict(set)
        self._user_waypoint: dict[tuple[str, Key], Key] = {}
        self._recorders: dict[str, Recorder] = {
            "Namespace": self._namespace,
            "Node": self._node,
            "Pod": self._pod,
            "Service": self._service,
            "Gateway": self._gateway,
            "AuthorizationPolicy": self._policy,
            "PeerAuthentication": self._peer_auth,
            "ServiceEntry": self._entry,
        }

    def record(self, kind: str, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        """Store one object (``obj`` None: deleted) and mark what it may change; unknown kinds
        change nothing."""
        recorder = self._recorders.get(kind)
        if recorder is not None:
            recorder(key, obj, dirty)

    # ------------------------------------------------------------------ recorders

    def _namespace(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        name = key[1]
        old = _put(self.namespaces, name, obj, lambda o: NamespaceFacts(meta=read_meta(o)))
        new = self.namespaces.get(name)
        if (old.meta.labels if old else _EMPTY) == (new.meta.labels if new else _EMPTY):
            return
        dirty.pods |= self._pods_by_ns.get(name, set())
        dirty.services |= self._services_by_ns.get(name, set())
        dirty.entries |= self._entries_by_ns.get(name, set())

    def _node(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        name = key[1]
        old = _put(self.nodes, name, obj, lambda o: NodeFacts(meta=read_meta(o)))
        new = self.nodes.get(name)
        if (old.labels if old else _EMPTY) != (new.labels if new else _EMPTY):
            dirty.pods |= self._pods_by_node.get(name, set())

    def _pod(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            self._unindex_pod(old)
        if obj is not None:
            pod = read_pod(obj)
            self.pods[key] = pod
            self._index_pod(pod)
        dirty.pods.add(key)

    def _service(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        old = _put(self.services, key, obj, read_service)
        new = self.services.get(key)
        _file(self._services_by_ns[key[0]], key, new is not None)
        dirty.services.add(key)
        if old is None or new is None or old.selector != new.selector or old.ports != new.ports:
            dirty.pods |= self._selected_by(key[0], old, new)

    def _gateway(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        old = _put(self.gateways, key, obj, read_gateway)
        new = self.gateways.get(key)
        for kind, user in self._waypoint_users.get(key, set()):
            {"Pod": dirty.pods, "Service": dirty.services, "ServiceEntry": dirty.entries}[kind].add(
                user
            )
        for facts in (old, new):
            account = facts.meta.annotations.get(L.FOR_SERVICE_ACCOUNT) if facts else None
            if account:
                dirty.pods |= self._pods_by_account.get((key[0], account), set())

    def _policy(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        old = _put(self.policies, key, obj, read_authorization_policy)
        new = self.policies.get(key)
        _file(self._selector_policies_by_ns[key[0]], key, new is not None and bool(new.selector))
        dirty.policies.add(key)
        scope = None if key[0] == self.config.root_namespace else key[0]
        dirty.pods |= self._selected_by(scope, old, new)

    def _peer_auth(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        existed = bool(self.peer_auths)
        old = _put(self.peer_auths, key, obj, read_peer_authentication)
        new = self.peer_auths.get(key)
        dirty.peer_auth = True
        mesh_wide = key[0] == self.config.root_namespace and any(
            f is not None and f.selector is None for f in (old, new)
        )
        if mesh_wide or existed != bool(self.peer_auths):
            dirty.pods |= set(self.pods)
        else:
            dirty.pods |= self._pods_by_ns.get(key[0], set())

    def _entry(self, key: Key, obj: Mapping[str, Any] | None, dirty: Dirty) -> None:
        old = _put(self.entries, key, obj, read_service_entry)
        new = self.entries.get(key)
        _file(self._entries_by_ns[key[0]], key, new is not None)
        dirty.entries.add(key)
        dirty.pods |= self._selected_by(key[0], old, new)

    # ------------------------------------------------------------------ queries

    def _index_pod(self, pod: PodFacts) -> None:
        key = pod.key
        self._pods_by_ns[key[0]].add(key)
        self._pods_by_node[pod.node].add(key)
        self._pods_by_account[(key[0], pod.service_account)].add(key)
        for label in pod.labels.items():
            self._pods_by_label[label].add(key)

    def _unindex_pod(self, pod: PodFacts) -> None:
        key = pod.key
        self._pods_by_ns[key[0]].discard(key)
        self._pods_by_node[pod.node].discard(key)
        self._pods_by_account[(key[0], pod.service_account)].discard(key)
        for label in pod.labels.items():
            bucket = self._pods_by_label.get(label)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self._pods_by_label[label]

    def _selected_by(self, namespace: str | None, *facts: _Selecting | None) -> set[Key]:
        """Pods the selector of any of ``facts`` (old and new) selects; none without one."""
        pods: set[Key] = set()
        for item in facts:
            if item is not None and item.selector:
                pods |= self._select(namespace, item.selector)
        return pods

    def _select(self, namespace: str | None, selector: Labels) -> set[Key]:
        """Pods matching an equality selector, in one namespace or (None) all of them."""
        buckets = [self._pods_by_label.get(label, set()) for label in selector.items()]
        smallest = min(buckets, key=len)
        return {
            key
            for key in smallest
            if (namespace is None or key[0] == namespace)
            and selector_matches(selector, self.pods[key].labels)
        }

    def ns_labels(self, namespace: str) -> Labels:
        facts = self.namespaces.get(namespace)
        return facts.meta.labels if facts is not None else _EMPTY

    def waypoint_for(
        self, kind: str, key: Key, labels: Labels, *, pod: PodFacts | None = None
    ) -> wp.Binding:
        """The waypoint an object (a pod when ``pod`` is given) asks for; remembered, so a
        change of that Gateway rebuilds the object."""
        namespace_labels = self.ns_labels(key[0])
        binding = wp.resolve(
            labels=labels,
            namespace=key[0],
            namespace_labels=namespace_labels,
            kind=wp.SERVICE if pod is None else wp.WORKLOAD,
            gateways=self.gateways,
            caller_namespace_labels=namespace_labels,
            service_account_waypoint=None if pod is None else self._account_waypoint(pod),
        )
        self._track_waypoint(kind, key, binding)
        return binding

    def forget_waypoint(self, kind: str, key: Key) -> None:
        """The object is gone or has no output: no Gateway change concerns it any more."""
        self._track_waypoint(kind, key, None)

    def _track_waypoint(self, kind: str, key: Key, binding: wp.Binding | None) -> None:
        user = (kind, key)
        previous = self._user_waypoint.pop(user, None)
        if previous is not None:
            self._waypoint_users[previous].discard(user)
        if binding is not None and binding.requested is not None:
            self._user_waypoint[user] = binding.requested
            self._waypoint_users[binding.requested].add(user)

    def _account_waypoint(self, pod: PodFacts) -> GatewayFacts | None:
        """The older model: a waypoint annotated for this pod's service account."""
        namespace = pod.meta.namespace
        for gateway in self.gateways.values():
            if (
                gateway.meta.namespace == namespace
                and wp.is_waypoint(gateway)
                and gateway.meta.annotations.get(L.FOR_SERVICE_ACCOUNT) == pod.service_account
            ):
                return gateway
        return None

    def services_of(self, pod: PodFacts) -> dict[str, wpb.PortList]:
        out: dict[str, wpb.PortList] = {}
        namespace = pod.meta.namespace
        for key in self._services_by_ns.get(namespace, ()):
            service = self.services[key]
            if service.external_name or not selector_matches(service.selector, pod.labels):
                continue
            hostname = self.config.service_hostname(namespace, service.meta.name)
            out[svc.resource_name(namespace, hostname)] = wl.service_ports(service, pod)
        for key in self._entries_by_ns.get(namespace, ()):
            entry = self.entries[key]
            if selector_matches(entry.selector, pod.labels):
                for host in entry.hosts:
                    out[svc.resource_name(namespace, host)] = svc.entry_ports(entry)
        return out

    def selector_policies(self, namespace: str) -> Iterable[Key]:
        """AuthorizationPolicies of ``namespace`` that select workloads by label."""
        return self._selector_policies_by_ns.get(namespace, ())

    def pods_on_node(self, node: str) -> list[PodFacts]:
        return [self.pods[key] for key in self._pods_by_node.get(node, ())]


class _Selecting(Protocol):
    @property
    def selector(self) -> Labels | None: ...


def _put(
    table: dict[K, F],
    key: K,
    obj: Mapping[str, Any] | None,
    read: Callable[[Mapping[str, Any]], F],
) -> F | None:
    """Store the facts ``read`` from ``obj`` under ``key`` (``obj`` None: remove them); return
    the facts that were there before."""
    old = table.pop(key, None)
    if obj is not None:
        table[key] = read(obj)
    return old


def _file(bucket: set[Key], key: Key, present: bool) -> None:
    if present:
        bucket.add(key)
    else:
        bucket.discard(key)
