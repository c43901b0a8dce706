"""The incremental ambient computation: one object changes, only what depends on it is rebuilt.

``AmbientIndex.apply(kind, namespace, name, obj)`` records the new facts (``obj`` None for a
deletion), works out which outputs can depend on them through the indexes of ``Inputs``
(pods by namespace, node, label and service account; services by namespace; who consulted
which waypoint), rebuilds just those, and returns the outputs whose content changed. The cost
of a change grows with what it affects, not with the size of the cluster.

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ambientmesh.controlplane.ambient import authorization as authz
from ambientmesh.controlplane.ambient import peer_authentication as peer
from ambientmesh.controlplane.ambient import services as svc
from ambientmesh.controlplane.ambient import waypoints as wp
from ambientmesh.controlplane.ambient import workloads as wl
from ambientmesh.controlplane.ambient.config import MeshConfig
from ambientmesh.controlplane.ambient.facts import Key, PodFacts, read_meta, selector_matches
from ambientmesh.controlplane.ambient.inputs import Dirty, Inputs
from ambientmesh.proto import authorization_pb2 as apb
from ambientmesh.proto import workload_pb2 as wpb


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


class AmbientIndex:
    """The inputs with their indexes, and the last outputs (to report only changes)."""

    def __init__(self, config: MeshConfig) -> None:
        self.config = config
        self.inputs = Inputs(config)
        # Outputs as last emitted.
        self.addresses: dict[str, wpb.Address] = {}
        self.authorizations: dict[str, apb.Authorization] = {}
        self.bindings: dict[Key, wp.Binding] = {}
        self.conversions: dict[Key, authz.Conversion] = {}
        self._owned: dict[tuple[str, Key], set[str]] = {}  # (kind, key) -> address names

    def apply(self, kind: str, obj: Mapping[str, Any] | None, *, key: Key | None = None) -> Changes:
        """Record one object (``obj`` None = deleted, then ``key`` names it) and return what
        changed. Unknown kinds change nothing."""
        if key is None:
            if obj is None:
                raise ValueError("a deletion needs the key of the deleted object")
            key = read_meta(obj).key
        dirty = Dirty()
        self.inputs.record(kind, key, obj, dirty)
        return self._rebuild(dirty)

    def apply_all(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> Changes:
        """Load many objects, then rebuild once (initial sync)."""
        dirty = Dirty()
        for kind, obj in items:
            self.inputs.record(kind, read_meta(obj).key, obj, dirty)
        return self._rebuild(dirty)

    def pods_on_node(self, node: str) -> list[PodFacts]:
        return self.inputs.pods_on_node(node)

    # ------------------------------------------------------------------ rebuild

    def _rebuild(self, dirty: Dirty) -> Changes:
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
        facts = self.inputs.policies.get(key)
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
        if self.inputs.peer_auths:
            static = peer.static_strict(self.config)
            wanted[f"{static.namespace}/{static.name}"] = static
        policies = list(self.inputs.peer_auths.values())
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
        facts = self.inputs.services.get(key)
        owner = ("Service", key)
        if facts is None or facts.external_name:
            self.inputs.forget_waypoint("Service", key)
            self._emit_addresses(owner, {}, changes)
            if self.bindings.pop(key, None) is not None:
                changes.service_bindings[key] = None
            return
        binding = self.inputs.waypoint_for("Service", key, facts.meta.labels)
        ns_labels = self.inputs.ns_labels(key[0])
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
        facts = self.inputs.entries.get(key)
        owner = ("ServiceEntry", key)
        if facts is None:
            self.inputs.forget_waypoint("ServiceEntry", key)
            self._emit_addresses(owner, {}, changes)
            return
        binding = self.inputs.waypoint_for("ServiceEntry", key, facts.meta.labels)
        outputs = svc.build_entry_services(facts, waypoint=self._gateway_address(binding))
        outputs.update(svc.build_entry_workloads(facts, self.config))
        self._emit_addresses(owner, outputs, changes)

    def _rebuild_pod(self, key: Key, changes: Changes) -> None:
        pod = self.inputs.pods.get(key)
        owner = ("Pod", key)
        if pod is None or not wl.has_workload(pod):
            self.inputs.forget_waypoint("Pod", key)
            self._emit_addresses(owner, {}, changes)
            return
        binding = self.inputs.waypoint_for("Pod", key, pod.labels, pod=pod)
        inputs = wl.WorkloadInputs(
            enrolled=wl.enrolled(pod, self.inputs.ns_labels(key[0])),
            services=self.inputs.services_of(pod),
            policies=self._pod_policies(pod),
            waypoint=self._gateway_address(binding),
            node=self.inputs.nodes.get(pod.node),
        )
        address = wl.build(pod, inputs, self.config)
        self._emit_addresses(owner, {address.workload.uid: address}, changes)

    def _gateway_address(self, binding: wp.Binding) -> wpb.GatewayAddress | None:
        return wp.gateway_address(binding.waypoint, self.config) if binding.waypoint else None

    def _pod_policies(self, pod: PodFacts) -> list[str]:
        names = []
        namespaces = {pod.meta.namespace, self.config.root_namespace}
        for namespace in namespaces:
            for key in self.inputs.selector_policies(namespace):
                policy = self.inputs.policies[key]
                name = authz.resource_name(*key)
                if name in self.authorizations and selector_matches(policy.selector, pod.labels):
                    names.append(name)
        derived = peer.policy_for_workload(
            pod.labels,
            peer.scoped(list(self.inputs.peer_auths.values()), pod.meta.namespace, self.config),
            self.config,
            any_exist=bool(self.inputs.peer_auths),
        )
        if derived is not None:
            names.append(derived)
        return names
