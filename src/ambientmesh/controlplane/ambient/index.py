"""The incremental ambient computation: one object changes, only what depends on it is rebuilt.

``AmbientIndex.apply(kind, namespace, name, obj)`` records the new facts (``obj`` None for a
deletion), works out which outputs can depend on them through a handful of indexes (pods by
namespace, node, label and service account; services by namespace; who consulted which
waypoint), rebuilds just those, and returns the outputs whose content changed. The cost of a
change grows with what it affects, not with the size of the cluster.

Dependencies, from input to output:

- Pod -> its Workload.
- Namespace labels -> Workloads and Services of that namespace (enrollment, waypoints).
- Node labels -> Workloads on that node (locality).
- Service -> its Service, and the Workloads its old and new selectors select (services map).
- Gateway -> whatever consulted that waypoint, and pods of an annotated service account.
- AuthorizationPolicy -> its Authorization, and Workloads its old and new selectors select.
- PeerAuthentication -> derived Authorizations, and Workloads of its namespace (all
  Workloads when it is mesh-wide or the first or last one).
- ServiceEntry -> its Services and endpoint Workloads, and the pods it selects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ambientmesh.controlplane.ambient import authorization as authz
from ambientmesh.controlplane.ambient import labels as L
from ambientmesh.controlplane.ambient import peer_authentication as peer
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
from ambientmesh.proto import authorization_pb2 as apb
from ambientmesh.proto import workload_pb2 as wpb

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


@dataclass(slots=True)
class Changes:
    """Outputs that changed: resource name -> new message, or None when it went away."""

    addresses: dict[str, wpb.Address | None] = field(default_factory=dict)
    authorizations: dict[str, apb.Authorization | None] = field(default_factory=dict)
    # Status facts for the controllers: None when the object is gone or has nothing to say.
    service_bindings: dict[Key, wp.Binding | None] = field(default_factory=dict)
    policy_conversions: dict[Key, authz.Conversion | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.addresses
            or self.authorizations
            or self.service_bindings
            or self.policy_conversions
        )

    def merge(self, other: Changes) -> None:
        self.addresses.update(other.addresses)
        self.authorizations.update(other.authorizations)
        self.service_bindings.update(other.service_bindings)
        self.policy_conversions.update(other.policy_conversions)


@dataclass(slots=True)
class _Dirty:
    pods: set[Key] = field(default_factory=set)
    services: set[Key] = field(default_factory=set)
    entries: set[Key] = field(default_factory=set)
    policies: set[Key] = field(default_factory=set)
    peer_auth: bool = False


class AmbientIndex:
    """All inputs, the indexes over them, and the last outputs (to report only changes)."""

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
        # Outputs as last emitted.
        self.addresses: dict[str, wpb.Address] = {}
        self.authorizations: dict[str, apb.Authorization] = {}
        self.bindings: dict[Key, wp.Binding] = {}
        self.conversions: dict[Key, authz.Conversion] = {}
        self._owned: dict[tuple[str, Key], set[str]] = {}  # (kind, key) -> address names

    # ------------------------------------------------------------------ input

    def apply(self, kind: str, obj: Mapping[str, Any] | None, *, key: Key | None = None) -> Changes:
        """Record one object (``obj`` None = deleted, then ``key`` names it) and return what
        changed. Unknown kinds change nothing."""
        if key is None:
            if obj is None:
                raise ValueError("a deletion needs the key of the deleted object")
            key = read_meta(obj).key
        handler = self._handlers().get(kind)
        if handler is None:
            return Changes()
        dirty = _Dirty()
        handler(key, obj, dirty)
        return self._rebuild(dirty)

    def apply_all(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> Changes:
        """Load many objects, then rebuild once (initial sync)."""
        dirty = _Dirty()
        handlers = self._handlers()
        for kind, obj in items:
            handler = handlers.get(kind)
            if handler is not None:
                handler(read_meta(obj).key, obj, dirty)
        return self._rebuild(dirty)

    def _handlers(self) -> dict[str, Callable[[Key, Mapping[str, Any] | None, _Dirty], None]]:
        return {
            "Namespace": self._namespace,
            "Node": self._node,
            "Pod": self._pod,
            "Service": self._service,
            "Gateway": self._gateway,
            "AuthorizationPolicy": self._policy,
            "PeerAuthentication": self._peer_auth,
            "ServiceEntry": self._entry,
        }

    def _namespace(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        name = key[1]
        old = self.namespaces.pop(name, None)
        if obj is not None:
            self.namespaces[name] = NamespaceFacts(meta=read_meta(obj))
        new = self.namespaces.get(name)
        if (old.meta.labels if old else _EMPTY) == (new.meta.labels if new else _EMPTY):
            return
        dirty.pods |= self._pods_by_ns.get(name, set())
        dirty.services |= self._services_by_ns.get(name, set())
        dirty.entries |= self._entries_by_ns.get(name, set())

    def _node(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        name = key[1]
        old = self.nodes.pop(name, None)
        if obj is not None:
            self.nodes[name] = NodeFacts(meta=read_meta(obj))
        new = self.nodes.get(name)
        if (old.labels if old else _EMPTY) != (new.labels if new else _EMPTY):
            dirty.pods |= self._pods_by_node.get(name, set())

    def _pod(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        old = self.pods.pop(key, None)
        if old is not None:
            self._unindex_pod(old)
        if obj is not None:
            pod = read_pod(obj)
            self.pods[key] = pod
            self._index_pod(pod)
        dirty.pods.add(key)

    def _service(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        old = self.services.pop(key, None)
        if obj is not None:
            self.services[key] = read_service(obj)
            self._services_by_ns[key[0]].add(key)
        else:
            self._services_by_ns[key[0]].discard(key)
        new = self.services.get(key)
        dirty.services.add(key)
        if old is None or new is None or old.selector != new.selector or old.ports != new.ports:
            for facts in (old, new):
                if facts is not None and facts.selector:
                    dirty.pods |= self._select(key[0], facts.selector)

    def _gateway(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        old = self.gateways.pop(key, None)
        if obj is not None:
            self.gateways[key] = read_gateway(obj)
        new = self.gateways.get(key)
        for kind, user in self._waypoint_users.get(key, set()):
            {"Pod": dirty.pods, "Service": dirty.services, "ServiceEntry": dirty.entries}[kind].add(
                user
            )
        for facts in (old, new):
            account = facts.meta.annotations.get(L.FOR_SERVICE_ACCOUNT) if facts else None
            if account:
                dirty.pods |= self._pods_by_account.get((key[0], account), set())

    def _policy(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        old = self.policies.pop(key, None)
        if obj is not None:
            self.policies[key] = read_authorization_policy(obj)
        new = self.policies.get(key)
        if new is not None and new.selector:
            self._selector_policies_by_ns[key[0]].add(key)
        else:
            self._selector_policies_by_ns[key[0]].discard(key)
        dirty.policies.add(key)
        for facts in (old, new):
            if facts is not None and facts.selector:
                scope = None if key[0] == self.config.root_namespace else key[0]
                dirty.pods |= self._select(scope, facts.selector)

    def _peer_auth(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        existed = bool(self.peer_auths)
        old = self.peer_auths.pop(key, None)
        if obj is not None:
            self.peer_auths[key] = read_peer_authentication(obj)
        new = self.peer_auths.get(key)
        dirty.peer_auth = True
        mesh_wide = key[0] == self.config.root_namespace and any(
            f is not None and f.selector is None for f in (old, new)
        )
        if mesh_wide or existed != bool(self.peer_auths):
            dirty.pods |= set(self.pods)
        else:
            dirty.pods |= self._pods_by_ns.get(key[0], set())

    def _entry(self, key: Key, obj: Mapping[str, Any] | None, dirty: _Dirty) -> None:
        old = self.entries.pop(key, None)
        if obj is not None:
            self.entries[key] = read_service_entry(obj)
            self._entries_by_ns[key[0]].add(key)
        else:
            self._entries_by_ns[key[0]].discard(key)
        dirty.entries.add(key)
        for facts in (old, self.entries.get(key)):
            if facts is not None and facts.selector:
                dirty.pods |= self._select(key[0], facts.selector)

    def pods_on_node(self, node: str) -> list[PodFacts]:
        return [self.pods[key] for key in self._pods_by_node.get(node, ())]

    # ------------------------------------------------------------------ indexes

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

    def _ns_labels(self, namespace: str) -> Labels:
        facts = self.namespaces.get(namespace)
        return facts.meta.labels if facts is not None else _EMPTY

    def _track_waypoint(self, kind: str, key: Key, binding: wp.Binding | None) -> None:
        user = (kind, key)
        previous = self._user_waypoint.pop(user, None)
        if previous is not None:
            self._waypoint_users[previous].discard(user)
        if binding is not None and binding.requested is not None:
            self._user_waypoint[user] = binding.requested
            self._waypoint_users[binding.requested].add(user)

    # ------------------------------------------------------------------ rebuild

    def _rebuild(self, dirty: _Dirty) -> Changes:
        changes = Changes()
        if dirty.peer_auth:
            self._rebuild_peer_auth(changes)
        for key in dirty.policies:
            self._rebuild_policy(key, changes)
        for key in dirty.services:
            self._rebuild_service(key, changes)
        for key in dirty.entries:
            self._rebuild_entry(key, changes)
        for key in dirty.pods:
            self._rebuild_pod(key, changes)
        return changes

    def _emit_addresses(
        self, owner: tuple[str, Key], new: Mapping[str, wpb.Address], changes: Changes
    ) -> None:
        old_names = self._owned.pop(owner, set())
        for name in old_names - new.keys():
            if self.addresses.pop(name, None) is not None:
                changes.addresses[name] = None
        for name, message in new.items():
            if self.addresses.get(name) != message:
                self.addresses[name] = message
                changes.addresses[name] = message
        if new:
            self._owned[owner] = set(new)

    def _emit_authorization(
        self, name: str, message: apb.Authorization | None, changes: Changes
    ) -> None:
        if message is None:
            if self.authorizations.pop(name, None) is not None:
                changes.authorizations[name] = None
        elif self.authorizations.get(name) != message:
            self.authorizations[name] = message
            changes.authorizations[name] = message

    def _rebuild_policy(self, key: Key, changes: Changes) -> None:
        name = authz.resource_name(*key)
        facts = self.policies.get(key)
        if facts is None:
            self._emit_authorization(name, None, changes)
            if self.conversions.pop(key, None) is not None:
                changes.policy_conversions[key] = None
            return
        conversion = authz.convert(facts, self.config)
        self._emit_authorization(name, conversion.authorization, changes)
        if self.conversions.get(key) != conversion:
            self.conversions[key] = conversion
            changes.policy_conversions[key] = conversion

    def _rebuild_peer_auth(self, changes: Changes) -> None:
        """PeerAuthentications are few: recompute every derived policy."""
        wanted: dict[str, apb.Authorization] = {}
        if self.peer_auths:
            static = peer.static_strict(self.config)
            wanted[f"{static.namespace}/{static.name}"] = static
        policies = list(self.peer_auths.values())
        for facts in policies:
            scope = peer.scoped(policies, facts.meta.namespace, self.config)
            converted = peer.convert(facts, scope.inherited_mode())
            if converted is not None and facts.meta.namespace != self.config.root_namespace:
                wanted[f"{converted.namespace}/{converted.name}"] = converted
        derived = {
            name
            for name, message in self.authorizations.items()
            if message.name == peer.STATIC_STRICT_NAME
            or message.name.startswith(peer.CONVERTED_PREFIX)
        }
        for name in derived - wanted.keys():
            self._emit_authorization(name, None, changes)
        for name, message in wanted.items():
            self._emit_authorization(name, message, changes)

    def _rebuild_service(self, key: Key, changes: Changes) -> None:
        facts = self.services.get(key)
        owner = ("Service", key)
        if facts is None or facts.external_name:
            self._track_waypoint("Service", key, None)
            self._emit_addresses(owner, {}, changes)
            if self.bindings.pop(key, None) is not None:
                changes.service_bindings[key] = None
            return
        ns_labels = self._ns_labels(key[0])
        binding = wp.resolve(
            labels=facts.meta.labels,
            namespace=key[0],
            namespace_labels=ns_labels,
            kind=wp.SERVICE,
            gateways=self.gateways,
            caller_namespace_labels=ns_labels,
        )
        self._track_waypoint("Service", key, binding)
        address = svc.build_service(
            facts,
            config=self.config,
            waypoint=self._gateway_address(binding),
            ingress_use_waypoint=svc.ingress_use_waypoint(facts.meta.labels, ns_labels),
        )
        name = svc.resource_name(key[0], address.service.hostname)
        self._emit_addresses(owner, {name: address}, changes)
        reportable = binding if binding.reason not in ("NotRequested",) else None
        if self.bindings.get(key) != reportable:
            if reportable is None:
                self.bindings.pop(key, None)
            else:
                self.bindings[key] = reportable
            changes.service_bindings[key] = reportable

    def _rebuild_entry(self, key: Key, changes: Changes) -> None:
        facts = self.entries.get(key)
        owner = ("ServiceEntry", key)
        if facts is None:
            self._track_waypoint("ServiceEntry", key, None)
            self._emit_addresses(owner, {}, changes)
            return
        ns_labels = self._ns_labels(key[0])
        binding = wp.resolve(
            labels=facts.meta.labels,
            namespace=key[0],
            namespace_labels=ns_labels,
            kind=wp.SERVICE,
            gateways=self.gateways,
            caller_namespace_labels=ns_labels,
        )
        self._track_waypoint("ServiceEntry", key, binding)
        outputs = svc.build_entry_services(facts, waypoint=self._gateway_address(binding))
        outputs.update(svc.build_entry_workloads(facts, self.config))
        self._emit_addresses(owner, outputs, changes)

    def _rebuild_pod(self, key: Key, changes: Changes) -> None:
        pod = self.pods.get(key)
        owner = ("Pod", key)
        if pod is None or not wl.has_workload(pod):
            self._track_waypoint("Pod", key, None)
            self._emit_addresses(owner, {}, changes)
            return
        ns_labels = self._ns_labels(key[0])
        binding = wp.resolve(
            labels=pod.labels,
            namespace=key[0],
            namespace_labels=ns_labels,
            kind=wp.WORKLOAD,
            gateways=self.gateways,
            caller_namespace_labels=ns_labels,
            service_account_waypoint=self._account_waypoint(pod),
        )
        self._track_waypoint("Pod", key, binding)
        inputs = wl.WorkloadInputs(
            enrolled=wl.enrolled(pod, ns_labels),
            services=self._pod_services(pod),
            policies=self._pod_policies(pod),
            waypoint=self._gateway_address(binding),
            node=self.nodes.get(pod.node),
        )
        address = wl.build(pod, inputs, self.config)
        self._emit_addresses(owner, {address.workload.uid: address}, changes)

    def _gateway_address(self, binding: wp.Binding) -> wpb.GatewayAddress | None:
        return wp.gateway_address(binding.waypoint, self.config) if binding.waypoint else None

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

    def _pod_services(self, pod: PodFacts) -> dict[str, wpb.PortList]:
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

    def _pod_policies(self, pod: PodFacts) -> list[str]:
        names = []
        namespaces = {pod.meta.namespace, self.config.root_namespace}
        for namespace in namespaces:
            for key in self._selector_policies_by_ns.get(namespace, ()):
                policy = self.policies[key]
                name = authz.resource_name(*key)
                if name in self.authorizations and selector_matches(policy.selector, pod.labels):
                    names.append(name)
        derived = peer.policy_for_workload(
            pod.labels,
            peer.scoped(list(self.peer_auths.values()), pod.meta.namespace, self.config),
            self.config,
            any_exist=bool(self.peer_auths),
        )
        if derived is not None:
            names.append(derived)
        return names
