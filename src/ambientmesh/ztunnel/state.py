"""The indexed in-memory view of workloads, services and policies that every decision reads.

``State`` is mutated only through ``apply``, which takes already-validated internal values
(see ``xds_convert``) and therefore cannot fail half way. Endpoints are not sent inside
Services: they are derived from each Workload's ``services`` map (reference 3.2), so a
workload may name a service that has not arrived yet and becomes its endpoint when it does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

from ambientmesh.ztunnel.model import (
    Address,
    NamespacedHostname,
    NetworkAddress,
    NetworkMode,
    Service,
    Workload,
)
from ambientmesh.ztunnel.policy import Authorization, Scope

_K = TypeVar("_K")
_V = TypeVar("_V")
_M = TypeVar("_M")
_T = TypeVar("_T")

# Derived values (see ``State.memoized``) are few per service; the cap only guards against a
# pathological mix of sources.
_MEMO_LIMIT = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class StateUpdate:
    """One batch of discovery changes: upserts, then removals by resource name."""

    workloads: tuple[Workload, ...] = ()
    services: tuple[Service, ...] = ()
    policies: tuple[Authorization, ...] = ()
    # Address resource names: a workload uid or a service "<namespace>/<hostname>".
    removed_addresses: tuple[str, ...] = ()
    # Authorization resource names: "<namespace>/<name>".
    removed_policies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """What an ``apply`` changed; ``authorization_changed``: re-check live connections."""

    workloads: frozenset[str] = frozenset()
    services: frozenset[NamespacedHostname] = frozenset()
    policies: frozenset[str] = frozenset()
    authorization_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (self.workloads or self.services or self.policies)


def _latest(entries: dict[str, Workload] | None) -> Workload | None:
    # Two workloads may briefly share an IP (pod churn); the one written last wins.
    if not entries:
        return None
    return next(reversed(entries.values()))


class State:
    """Workloads by uid, by (network, ip) and by name; services by key, VIP and host name;
    endpoints per service; policies by key, by namespace and global."""

    def __init__(self) -> None:
        self._workloads: dict[str, Workload] = {}
        self._workloads_by_addr: dict[NetworkAddress, dict[str, Workload]] = {}
        self._workloads_by_name: dict[tuple[str, str], dict[str, Workload]] = {}
        self._endpoints: dict[NamespacedHostname, dict[str, Workload]] = {}
        self._services: dict[NamespacedHostname, Service] = {}
        self._services_by_vip: dict[NetworkAddress, dict[NamespacedHostname, Service]] = {}
        self._services_by_host: dict[str, dict[NamespacedHostname, Service]] = {}
        self._policies: dict[str, Authorization] = {}
        self._namespace_policies: dict[str, dict[str, None]] = {}
        self._global_policies: dict[str, None] = {}
        self._memo: dict[Hashable, object] = {}

    # ------------------------------------------------------------------ updates

    def apply(self, update: StateUpdate) -> StateChange:
        """Apply upserts, then removals; report what changed."""
        workloads: set[str] = set()
        services: set[NamespacedHostname] = set()
        policies: set[str] = set()
        authz = False
        for workload in update.workloads:
            old = self._workloads.get(workload.uid)
            if old != workload:
                workloads.add(workload.uid)
                authz |= (
                    old is not None
                    and old.authorization_policies != workload.authorization_policies
                )
                self._put_workload(workload)
        for service in update.services:
            if self._services.get(service.key) != service:
                services.add(service.key)
                self._put_service(service)
        for policy in update.policies:
            if self._policies.get(policy.key) != policy:
                policies.add(policy.key)
                self._put_policy(policy)
        for name in update.removed_addresses:
            if self._drop_workload(name):
                workloads.add(name)
            key = _service_key(name)
            if key is not None and self._drop_service(key):
                services.add(key)
        for name in update.removed_policies:
            if self._drop_policy(name):
                policies.add(name)
        if workloads or services or policies:
            self._memo.clear()
        return StateChange(
            workloads=frozenset(workloads),
            services=frozenset(services),
            policies=frozenset(policies),
            authorization_changed=authz or bool(policies),
        )

    def _put_workload(self, workload: Workload) -> None:
        self._drop_workload(workload.uid)
        uid = workload.uid
        self._workloads[uid] = workload
        if workload.network_mode is not NetworkMode.HOST_NETWORK:
            # A host-network pod shares the node's IP: looking it up by IP would be wrong.
            for ip in workload.addresses:
                addr = NetworkAddress(network=workload.network, address=ip)
                self._workloads_by_addr.setdefault(addr, {})[uid] = workload
        self._workloads_by_name.setdefault((workload.namespace, workload.name), {})[uid] = workload
        for service in workload.services:
            self._endpoints.setdefault(service, {})[uid] = workload

    def _drop_workload(self, uid: str) -> bool:
        old = self._workloads.pop(uid, None)
        if old is None:
            return False
        for ip in old.addresses:
            _discard(self._workloads_by_addr, NetworkAddress(network=old.network, address=ip), uid)
        _discard(self._workloads_by_name, (old.namespace, old.name), uid)
        for service in old.services:
            _discard(self._endpoints, service, uid)
        return True

    def _put_service(self, service: Service) -> None:
        self._drop_service(service.key)
        self._services[service.key] = service
        for vip in service.addresses:
            self._services_by_vip.setdefault(vip, {})[service.key] = service
        self._services_by_host.setdefault(service.hostname, {})[service.key] = service

    def _drop_service(self, key: NamespacedHostname) -> bool:
        old = self._services.pop(key, None)
        if old is None:
            return False
        for vip in old.addresses:
            _discard(self._services_by_vip, vip, key)
        _discard(self._services_by_host, old.hostname, key)
        return True

    def _put_policy(self, policy: Authorization) -> None:
        self._drop_policy(policy.key)
        self._policies[policy.key] = policy
        if policy.scope is Scope.GLOBAL:
            self._global_policies[policy.key] = None
        elif policy.scope is Scope.NAMESPACE:
            self._namespace_policies.setdefault(policy.namespace, {})[policy.key] = None

    def _drop_policy(self, key: str) -> bool:
        old = self._policies.pop(key, None)
        if old is None:
            return False
        self._global_policies.pop(key, None)
        _discard(self._namespace_policies, old.namespace, key)
        return True

    # ------------------------------------------------------------------ lookups

    def memoized(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """A value derived from this state, computed once per state version.

        Every change ``apply`` makes drops all memoized values, so ``compute`` must depend
        only on this state and on what ``key`` names.
        """
        try:
            return cast(_T, self._memo[key])
        except KeyError:
            pass
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        value = self._memo[key] = compute()
        return value

    def workload(self, uid: str) -> Workload | None:
        return self._workloads.get(uid)

    def workload_at(self, addr: NetworkAddress) -> Workload | None:
        """The workload owning ``addr`` (never a host-network one)."""
        return _latest(self._workloads_by_addr.get(addr))

    def workload_named(self, namespace: str, name: str) -> Workload | None:
        return _latest(self._workloads_by_name.get((namespace, name)))

    def service(self, key: NamespacedHostname) -> Service | None:
        return self._services.get(key)

    def services_at(self, vip: NetworkAddress) -> tuple[Service, ...]:
        return tuple(self._services_by_vip.get(vip, {}).values())

    def service_at(self, vip: NetworkAddress, *, prefer_namespace: str = "") -> Service | None:
        """The service behind a VIP: one in ``prefer_namespace`` if any, else a canonical one."""
        return _pick_service(self.services_at(vip), prefer_namespace)

    def services_named(self, hostname: str) -> tuple[Service, ...]:
        return tuple(self._services_by_host.get(hostname, {}).values())

    def endpoints(self, service: NamespacedHostname) -> tuple[Workload, ...]:
        """Workloads that list ``service`` in their ``services`` map."""
        return tuple(self._endpoints.get(service, {}).values())

    def is_endpoint(self, service: NamespacedHostname, workload: Workload) -> bool:
        return workload.uid in self._endpoints.get(service, {})

    def services_of(self, workload: Workload) -> tuple[Service, ...]:
        """The known services ``workload`` backs."""
        found = (self._services.get(key) for key in workload.services)
        return tuple(service for service in found if service is not None)

    def address_at(self, addr: NetworkAddress, *, prefer_namespace: str = "") -> Address | None:
        """A workload owning ``addr``, else a service with that VIP (ztunnel's order)."""
        return self.workload_at(addr) or self.service_at(addr, prefer_namespace=prefer_namespace)

    def destination(self, dest: NamespacedHostname | NetworkAddress) -> Address | None:
        """Resolve a gateway/waypoint reference: a host name names a service (or, rarely, a
        workload with that host name); an address names a workload or a VIP."""
        if isinstance(dest, NetworkAddress):
            return self.address_at(dest)
        service = self._services.get(dest)
        if service is not None:
            return service
        for workload in self._workloads.values():  # rare path: not worth an index
            if workload.namespace == dest.namespace and workload.hostname == dest.hostname:
                return workload
        return None

    def policy(self, key: str) -> Authorization | None:
        return self._policies.get(key)

    def policies_for(self, workload: Workload) -> tuple[Authorization, ...]:
        """Policies that apply to ``workload``: its namespace's, the global ones and those that
        select it by name. Names not (yet) known are skipped, as ztunnel does (reference 4.4)."""
        keys = dict.fromkeys(
            [
                *self._namespace_policies.get(workload.namespace, {}),
                *self._global_policies,
                *workload.authorization_policies,
            ]
        )
        found = (self._policies.get(key) for key in keys)
        return tuple(policy for policy in found if policy is not None)

    def all_workloads(self) -> Iterator[Workload]:
        return iter(sorted(self._workloads.values(), key=lambda w: w.uid))

    def all_services(self) -> Iterator[Service]:
        return iter(sorted(self._services.values(), key=lambda s: s.key))

    def all_policies(self) -> Iterator[Authorization]:
        return iter(sorted(self._policies.values(), key=lambda p: p.key))


def _pick_service(candidates: Iterable[Service], prefer_namespace: str) -> Service | None:
    best: Service | None = None
    best_rank = -1
    for service in candidates:
        rank = 2 if service.namespace == prefer_namespace else int(service.canonical)
        if rank > best_rank:
            best, best_rank = service, rank
    return best


def _service_key(name: str) -> NamespacedHostname | None:
    namespace, sep, hostname = name.partition("/")
    if not sep or not namespace or not hostname or "/" in hostname:
        return None
    return NamespacedHostname(namespace=namespace, hostname=hostname)


def _discard(index: dict[_K, dict[_M, _V]], key: _K, member: _M) -> None:
    entries = index.get(key)
    if entries is not None:
        entries.pop(member, None)
        if not entries:
            del index[key]
