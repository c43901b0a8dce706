"""One write transaction of the store: the Kubernetes semantics applied to SQLite rows.

A ``Transaction`` lives inside ``BEGIN IMMEDIATE … COMMIT`` on the writer connection. Every
change gets the next resourceVersion and one row in ``events``; the caller publishes those
events only after the commit succeeded. ``savepoint()`` lets a group of writes share the
transaction while each one fails alone.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ambientmesh.errors import AlreadyExists, MeshError, NotFound, ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store import semantics as sem
from ambientmesh.store.admission import Admission, AdmissionRequest, IPNetwork
from ambientmesh.store.checks import Validator, admit, kind_of, validate
from ambientmesh.store.events import StoredEvent
from ambientmesh.store.rows import Row, Tables, columns_of, dumps
from ambientmesh.store.types import ApplyAction, ApplyResult, EventType, ObjectKey

_BY_GROUP_KIND = {(info.group, info.kind): info for info in kinds.ALL_KINDS}
_NAMESPACE = kinds.lookup("v1", "Namespace")
# Kubernetes leaves out vowels and look-alike characters so generated names spell nothing.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteSettings:
    """What a transaction needs besides the connection; fixed for the life of a store."""

    service_cidr: IPNetwork
    dns_service_ip: str
    admission: tuple[Admission, ...]
    validate: Validator
    random: random.Random
    new_uid: Callable[[], str]


@dataclass(slots=True)
class _Mark:
    rv: int
    events: int


@dataclass(slots=True, kw_only=True)
class Transaction:
    """The writes of one transaction. Not thread-safe; owned by the writer."""

    conn: sqlite3.Connection
    settings: WriteSettings
    now: datetime
    rv: int
    events: list[StoredEvent] = field(default_factory=list)
    tables: Tables = field(init=False)
    _savepoints: int = 0

    def __post_init__(self) -> None:
        self.tables = Tables(self.conn)

    # ------------------------------------------------------------ admission context
    @property
    def service_cidr(self) -> IPNetwork:
        return self.settings.service_cidr

    @property
    def dns_service_ip(self) -> str:
        return self.settings.dns_service_ip

    @property
    def random(self) -> random.Random:
        return self.settings.random

    def cluster_ip_in_use(self, ip: str) -> bool:
        return self.tables.cluster_ip_in_use(ip)

    # ------------------------------------------------------------ savepoints
    @contextmanager
    def savepoint(self, *, keep: bool = True) -> Iterator[None]:
        """Run a block that either happens entirely or (on error, or ``keep=False``) not at all."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        mark = _Mark(rv=self.rv, events=len(self.events))
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._rollback_to(name, mark)
            raise
        if keep:
            self.conn.execute(f"RELEASE {name}")
        else:
            self._rollback_to(name, mark)

    def _rollback_to(self, name: str, mark: _Mark) -> None:
        self.conn.execute(f"ROLLBACK TO {name}")
        self.conn.execute(f"RELEASE {name}")
        self.rv = mark.rv
        del self.events[mark.events :]

    # ------------------------------------------------------------ operations
    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        info = kind_of(obj)
        obj = self._generate_name(info, obj)
        self._validate(info, obj)
        key = sem.key_for(info, obj, "default")
        if self.tables.find(key) is not None:
            raise AlreadyExists(f'{info.qualified_plural} "{key.name}" already exists')
        return self._create(info, key, obj)

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        info = kind_of(obj)
        self._validate(info, obj)
        key = sem.key_for(info, obj, "default")
        row, old = self._existing(info, key)
        sem.check_preconditions(info, obj, old)
        new = sem.for_update(info, old, sem.normalize(info, obj, key))
        new = sem.with_generation(old, self._admit("UPDATE", info, new, old))
        return self._write_changed(info, key, row, old, new)

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        info = kind_of(obj)
        key = sem.key_for(info, obj, "default")
        if not info.has_status:
            raise NotFound(f"{info.qualified_plural} have no status subresource")
        row, old = self._existing(info, key)
        sem.check_preconditions(info, obj, old)
        new = sem.for_status_update(old, sem.normalize(info, obj, key))
        new = self._admit("UPDATE", info, new, old)
        self._validate(info, new)
        return self._write_changed(info, key, row, old, new)

    def delete(self, info: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        """Delete (or, with finalizers, mark for deletion) and collect the garbage it leaves."""
        key = ObjectKey.of(info, name, namespace or "default")
        row, old = self._existing(info, key)
        return self._delete(info, key, row, old)

    def get(self, info: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        _, obj = self._existing(info, ObjectKey.of(info, name, namespace or "default"))
        return obj

    def apply(self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool) -> list[ApplyResult]:
        """Create or configure every object, all or nothing; every problem is reported."""
        problems: list[str] = []
        planned = self._plan_apply(objs, problems)
        if problems:
            raise ValidationFailed(problems)
        results: dict[int, ApplyResult] = {}
        with self.savepoint(keep=not dry_run):
            # Namespaces first, so a batch may bring the namespace its objects live in.
            for index, info, key, manifest in sorted(planned, key=lambda p: p[1] != _NAMESPACE):
                try:
                    with self.savepoint():
                        action = self._apply_one(info, key, manifest)
                except MeshError as error:
                    problems.extend(f"items[{index}]: {line}" for line in _lines(error))
                    continue
                results[index] = ApplyResult(
                    kind=info.kind, namespace=key.namespace or None, name=key.name, action=action
                )
            if problems:
                raise ValidationFailed(problems)
        return [results[index] for index in range(len(objs))]

    def _generate_name(self, info: KindInfo, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """``metadata.generateName`` + five random characters, as Kubernetes names pods of a
        ReplicaSet; a name already taken is drawn again."""
        metadata = sem.metadata_of(obj)
        prefix = metadata.get("generateName")
        if metadata.get("name") or not isinstance(prefix, str) or not prefix:
            return obj
        for _ in range(16):
            suffix = "".join(self.random.choice(_NAME_ALPHABET) for _ in range(5))
            named = {**obj, "metadata": {**metadata, "name": f"{prefix}{suffix}"}}
            if self.tables.find(sem.key_for(info, named, "default")) is None:
                return named
        raise AlreadyExists(f'{info.qualified_plural}: no free name with prefix "{prefix}"')

    # ------------------------------------------------------------ apply helpers
    def _plan_apply(
        self, objs: Sequence[Mapping[str, Any]], problems: list[str]
    ) -> list[tuple[int, KindInfo, ObjectKey, Mapping[str, Any]]]:
        planned = []
        seen: dict[ObjectKey, int] = {}
        for index, obj in enumerate(objs):
            try:
                info = kind_of(obj)
                self._validate(info, obj)
            except MeshError as error:
                problems.extend(f"items[{index}]: {line}" for line in _lines(error))
                continue
            key = sem.key_for(info, obj, "default")
            if key in seen:
                problems.append(
                    f"items[{index}]: {key.describe()} appears twice in the batch "
                    f"(also items[{seen[key]}])"
                )
                continue
            seen[key] = index
            planned.append((index, info, key, obj))
        return planned

    def _apply_one(
        self, info: KindInfo, key: ObjectKey, manifest: Mapping[str, Any]
    ) -> ApplyAction:
        row = self.tables.find(key)
        if row is None:
            # A manifest exported from a live object carries its resourceVersion; apply ignores it.
            metadata = {
                k: v for k, v in sem.metadata_of(manifest).items() if k != "resourceVersion"
            }
            self._create(info, key, {**manifest, "metadata": metadata})
            return "created"
        old: dict[str, Any] = json.loads(row.doc)
        new = sem.for_apply(old, sem.normalize(info, manifest, key))
        new = sem.with_generation(old, self._admit("UPDATE", info, new, old))
        if sem.same_except_version(old, new):
            return "unchanged"
        self._write_changed(info, key, row, old, new)
        return "configured"

    # ------------------------------------------------------------ semantics
    def _create(self, info: KindInfo, key: ObjectKey, obj: Mapping[str, Any]) -> dict[str, Any]:
        self._require_namespace(info, key)
        new = sem.for_create(
            info, sem.normalize(info, obj, key), uid=self.settings.new_uid(), now=self.now
        )
        new = dict(self._admit("CREATE", info, new, None))
        return self._insert(info, key, new)

    def _write_changed(
        self,
        info: KindInfo,
        key: ObjectKey,
        row: Row,
        old: Mapping[str, Any],
        new: dict[str, Any],
    ) -> dict[str, Any]:
        if sem.metadata_of(new).get("deletionTimestamp") and not sem.finalizers_of(new):
            # The last finalizer is gone: the object goes now (one DELETED event).
            return self._remove(info, key, row, new)
        if sem.same_except_version(old, new):
            return dict(old)
        return self._replace(info, key, row, new)

    def _delete(
        self, info: KindInfo, key: ObjectKey, row: Row, obj: dict[str, Any]
    ) -> dict[str, Any]:
        if not sem.finalizers_of(obj):
            return self._remove(info, key, row, obj)
        if sem.metadata_of(obj).get("deletionTimestamp"):
            return obj
        return self._replace(info, key, row, sem.mark_deleting(obj, self.now))

    def _collect_garbage(self, info: KindInfo, key: ObjectKey, uid: str) -> None:
        """Delete what the removed object owned (Kubernetes' garbage collector, run inline).

        A dependent that still has another live owner only loses the dangling reference.
        Removing a Namespace removes everything in it, as the namespace controller does.
        """
        dependents = self.tables.owned_by(uid)
        if info is _NAMESPACE:
            dependents += self.tables.in_namespace(key.name)
        for dependent in dependents:
            if self.tables.by_id(dependent.id) is None:
                continue  # already collected through another path
            obj: dict[str, Any] = json.loads(dependent.doc)
            dep_info = _BY_GROUP_KIND[(_group(obj), obj["kind"])]
            dep_key = sem.key_for(dep_info, obj, "")
            others = [owner for owner in sem.owner_uids_of(obj) if owner != uid]
            if info is not _NAMESPACE and any(self.tables.uid_exists(owner) for owner in others):
                self._replace(dep_info, dep_key, dependent, sem.without_owner(obj, uid))
            else:
                self._delete(dep_info, dep_key, dependent, obj)

    def _require_namespace(self, info: KindInfo, key: ObjectKey) -> None:
        if not info.namespaced:
            return
        row = self.tables.find(ObjectKey.of(_NAMESPACE, key.namespace, None))
        if row is None:
            raise NotFound(f'namespaces "{key.namespace}" not found')
        if '"deletionTimestamp"' in row.doc:
            raise sem.Forbidden(
                f"unable to create new content in namespace {key.namespace} because it is "
                "being terminated"
            )

    def _admit(
        self,
        operation: Literal["CREATE", "UPDATE"],
        info: KindInfo,
        obj: Mapping[str, Any],
        old: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        request = AdmissionRequest(operation=operation, kind=info, obj=obj, old=old, context=self)
        return admit(self.settings.admission, request)

    def _validate(self, info: KindInfo, obj: Mapping[str, Any]) -> None:
        validate(self.settings.validate, info, obj)

    # ------------------------------------------------------------ rows
    def _existing(self, info: KindInfo, key: ObjectKey) -> tuple[Row, dict[str, Any]]:
        row = self.tables.find(key)
        if row is None:
            raise NotFound(f'{info.qualified_plural} "{key.name}" not found')
        return row, json.loads(row.doc)

    def _next_rv(self, obj: dict[str, Any]) -> int:
        self.rv += 1
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self.rv)}
        return self.rv

    def _insert(self, info: KindInfo, key: ObjectKey, obj: dict[str, Any]) -> dict[str, Any]:
        rv = self._next_rv(obj)
        labels, fields = columns_of(info, obj)
        doc = dumps(obj)
        uid = obj["metadata"]["uid"]
        row_id = self.tables.insert(key, uid=uid, rv=rv, labels=labels, fields=fields, doc=doc)
        self.tables.index(info, row_id, obj, fresh=True)
        self._record(rv, "ADDED", key, labels=labels, fields=fields, previous=None, doc=doc)
        return obj

    def _replace(
        self, info: KindInfo, key: ObjectKey, row: Row, obj: dict[str, Any]
    ) -> dict[str, Any]:
        rv = self._next_rv(obj)
        labels, fields = columns_of(info, obj)
        doc = dumps(obj)
        self.tables.update(row.id, rv=rv, labels=labels, fields=fields, doc=doc)
        self.tables.index(info, row.id, obj, fresh=False)
        self._record(rv, "MODIFIED", key, labels=labels, fields=fields, previous=row, doc=doc)
        return obj

    def _remove(
        self, info: KindInfo, key: ObjectKey, row: Row, obj: dict[str, Any]
    ) -> dict[str, Any]:
        obj = dict(obj)
        rv = self._next_rv(obj)
        self.tables.delete(row.id)
        self._record(
            rv, "DELETED", key, labels=row.labels, fields=row.fields, previous=None, doc=dumps(obj)
        )
        self._collect_garbage(info, key, obj["metadata"]["uid"])
        return obj

    def _record(
        self,
        rv: int,
        event_type: EventType,
        key: ObjectKey,
        *,
        labels: str,
        fields: str,
        previous: Row | None,
        doc: str,
    ) -> None:
        columns = (
            rv,
            event_type,
            key.group,
            key.kind,
            key.namespace,
            key.name,
            labels,
            fields,
            previous.labels if previous else None,
            previous.fields if previous else None,
            doc,
        )
        self.events.append(self.tables.record(columns))


def _group(obj: Mapping[str, Any]) -> str:
    return kinds.split_api_version(str(obj["apiVersion"]))[0]


def _lines(error: MeshError) -> list[str]:
    if isinstance(error, ValidationFailed):
        return list(error.issues)
    return [error.message]
