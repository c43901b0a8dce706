"""The resource store: Kubernetes API semantics over one SQLite file in WAL mode.

Writes go through ``write(ops)``: the operations run in one transaction, each inside its own
savepoint, so a batch commits with a single fsync (group commit) while an operation that
fails rolls back alone. A write is durable when ``write`` returns. Reads use one connection
per thread and see the last committed state; WAL lets them run while a write commits.

One process owns a store file at a time (an exclusive lock on ``<file>.lock``).
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import random
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ambientmesh.clock import Clock
from ambientmesh.errors import Gone, MeshError, NotFound, Unavailable
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.resources.validation import validate
from ambientmesh.store import schema
from ambientmesh.store.admission import DEFAULT_ADMISSION, Admission
from ambientmesh.store.checks import Validator
from ambientmesh.store.events import StoredEvent
from ambientmesh.store.filters import ListFilter, make_filter
from ambientmesh.store.rows import EVENT_COLUMNS, event_from_columns
from ambientmesh.store.transaction import Transaction, WriteSettings
from ambientmesh.store.types import ApplyResult, ObjectKey, ObjectList

log = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[Transaction], T]

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "istio-system")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """Settings of a store. ``dns_service_ip`` defaults to the tenth address of the range."""

    service_cidr: str = "10.96.0.0/16"
    dns_service_ip: str | None = None
    event_retention: int = 100_000
    bootstrap_namespaces: tuple[str, ...] = BOOTSTRAP_NAMESPACES


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """The result of one operation of a batch: a value or an error, and its committed events."""

    value: T | None
    error: MeshError | None
    events: tuple[StoredEvent, ...]

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A consistent read: the store's resourceVersion and the matching objects as JSON text."""

    resource_version: int
    docs: list[str]


class Store:
    """A resource store in one SQLite file. Writes are serialised; reads come from any thread."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock,
        config: StoreConfig | None = None,
        admission: Sequence[Admission] = DEFAULT_ADMISSION,
        validator: Validator = validate,
        rng: random.Random | None = None,
    ) -> None:
        self.path = Path(path)
        self.config = config or StoreConfig()
        self._clock = clock
        self._lock_file = _lock(self.path)
        self._writer = schema.connect(self.path)
        self._write_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False
        schema.create_schema(self._writer)
        self._rv = self._meta("rv")
        self._compacted = self._meta("compacted_rv")
        rng = rng or random.Random()
        network = ipaddress.ip_network(self.config.service_cidr)
        self._settings = WriteSettings(
            service_cidr=network,
            dns_service_ip=self.config.dns_service_ip or str(network[10]),
            admission=tuple(admission),
            validate=validator,
            random=rng,
            new_uid=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        )
        self._bootstrap()

    # ------------------------------------------------------------ writes
    def write(self, ops: Sequence[Operation[Any]]) -> list[Outcome[Any]]:
        """Run ``ops`` in one transaction, each all-or-nothing; durable when this returns."""
        with self._write_lock:
            self._check_open()
            txn = Transaction(
                conn=self._writer, settings=self._settings, now=self._clock.now(), rv=self._rv
            )
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                outcomes = [self._run(txn, op) for op in ops]
                compacted = self._compact(txn.rv)
                self._writer.execute("UPDATE meta SET value = ? WHERE key = 'rv'", (txn.rv,))
                self._writer.execute("COMMIT")
            except sqlite3.Error as error:
                self._abort()
                failure = Unavailable(f"the resource store could not commit: {error}")
                return [Outcome(None, failure, ()) for _ in ops]
            self._rv, self._compacted = txn.rv, compacted
            return outcomes

    def _run(self, txn: Transaction, op: Operation[Any]) -> Outcome[Any]:
        first = len(txn.events)
        try:
            with txn.savepoint():
                value = op(txn)
        except MeshError as error:
            return Outcome(None, error, ())
        except sqlite3.Error:
            raise
        except Exception as error:  # a bug in one write must not fail its neighbours
            log.exception("store operation failed")
            return Outcome(None, MeshError(f"internal error in the resource store: {error!r}"), ())
        return Outcome(value, None, tuple(txn.events[first:]))

    def _abort(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction may be left to roll back
            self._writer.execute("ROLLBACK")

    def _compact(self, rv: int) -> int:
        retention = self.config.event_retention
        floor = rv - retention
        if floor - self._compacted <= retention // 10:
            return self._compacted
        self._writer.execute("DELETE FROM events WHERE rv <= ?", (floor,))
        self._writer.execute("UPDATE meta SET value = ? WHERE key = 'compacted_rv'", (floor,))
        return floor

    def run(self, op: Operation[T]) -> T:
        (outcome,) = self.write([op])
        value: T = outcome.unwrap()
        return value

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(lambda txn: txn.create(obj))

    def update(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(lambda txn: txn.update(obj))

    def update_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(lambda txn: txn.update_status(obj))

    def delete(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.run(lambda txn: txn.delete(kind, name, namespace))

    def apply(
        self, objs: Sequence[Mapping[str, Any]], *, dry_run: bool = False
    ) -> list[ApplyResult]:
        return self.run(lambda txn: txn.apply(objs, dry_run=dry_run))

    # ------------------------------------------------------------ reads
    @property
    def resource_version(self) -> int:
        """The resourceVersion of the last committed change."""
        return self._rv

    def get(self, kind: KindInfo, name: str, namespace: str | None = None) -> dict[str, Any]:
        doc = self.get_raw(ObjectKey.of(kind, name, namespace or "default"))
        if doc is None:
            raise NotFound(f'{kind.qualified_plural} "{name}" not found')
        result: dict[str, Any] = json.loads(doc)
        return result

    def get_raw(self, key: ObjectKey) -> str | None:
        row = (
            self._reader()
            .execute(
                "SELECT doc FROM objects WHERE grp = ? AND kind = ? AND namespace = ? AND name = ?",
                (key.group, key.kind, key.namespace, key.name),
            )
            .fetchone()
        )
        return row[0] if row else None

    def list(
        self,
        kind: KindInfo,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        flt = make_filter(
            kind, namespace, label_selector=label_selector, field_selector=field_selector
        )
        snap = self.snapshot(flt)
        return ObjectList(
            items=[json.loads(doc) for doc in snap.docs],
            resource_version=str(snap.resource_version),
        )

    def snapshot(self, flt: ListFilter) -> Snapshot:
        """The objects ``flt`` selects and the resourceVersion they are current at."""
        sql = "SELECT namespace, name, labels, fields, doc FROM objects WHERE grp = ? AND kind = ?"
        args: list[Any] = [flt.group, flt.kind]
        if flt.namespace is not None:
            sql += " AND namespace = ?"
            args.append(flt.namespace)
        name = flt.fields.exact("metadata.name") if flt.fields else None
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        sql += " ORDER BY namespace, name"
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            (rv,) = conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
            rows = conn.execute(sql, args).fetchall()
        finally:
            conn.execute("COMMIT")
        if flt.labels is None and flt.fields is None:
            return Snapshot(resource_version=rv, docs=[row[4] for row in rows])
        docs = [
            doc
            for namespace, obj_name, labels, fields, doc in rows
            if flt.matches(namespace, obj_name, json.loads(labels), json.loads(fields))
        ]
        return Snapshot(resource_version=rv, docs=docs)

    def events_after(
        self, rv: int, *, group: str, kind: str, limit: int = 1000
    ) -> tuple[builtins.list[StoredEvent], int]:
        """Changes of one kind after ``rv``, oldest first, and the store's resourceVersion at
        the time of reading; ``Gone`` if that history was compacted away."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            check_history(rv, compacted=meta["compacted_rv"], current=meta["rv"])
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE grp = ? AND kind = ? AND rv > ? "
                "ORDER BY rv LIMIT ?",
                (group, kind, rv, limit),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        return [event_from_columns(row) for row in rows], int(meta["rv"])

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with self._readers_lock:
                readers, self._readers = self._readers, []
            for conn in [*readers, self._writer]:
                conn.close()
            self._lock_file.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the resource store is closed")

    def _reader(self) -> sqlite3.Connection:
        self._check_open()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _meta(self, key: str) -> int:
        (value,) = self._writer.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(value)

    def _bootstrap(self) -> None:
        namespace = kinds.lookup("v1", "Namespace")
        missing = [
            name
            for name in self.config.bootstrap_namespaces
            if self.get_raw(ObjectKey.of(namespace, name, None)) is None
        ]
        ops: list[Operation[Any]] = [_create_namespace(name) for name in missing]
        for outcome in self.write(ops):
            outcome.unwrap()


def _create_namespace(name: str) -> Operation[dict[str, Any]]:
    return lambda txn: txn.create(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


def check_history(rv: int, *, compacted: int, current: int) -> None:
    """Raise ``Gone`` when the changes after ``rv`` can no longer be replayed."""
    if rv < compacted:
        raise Gone(f"too old resource version: {rv} ({compacted})")
    if rv > current:
        # A version from the future belongs to another store (the state was reset): the
        # client must relist rather than wait for versions that mean something else here.
        raise Gone(f"resource version {rv} is newer than this store's ({current}); relist")


def _lock(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{path}.lock", "a+")  # noqa: SIM115 - held open for the store's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise Unavailable(
            f"the resource store {path} is in use by process {holder}; stop it first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
