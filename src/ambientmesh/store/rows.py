"""The SQL of one write: an object's row, its owner and cluster-IP index rows, its event row."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store import semantics as sem
from ambientmesh.store.admission import cluster_ips_of
from ambientmesh.store.events import StoredEvent
from ambientmesh.store.fields import selectable_fields
from ambientmesh.store.types import ObjectKey

EVENT_COLUMNS = (
    "rv, type, grp, kind, namespace, name, labels, fields, prev_labels, prev_fields, doc"
)
_ROW_COLUMNS = "id, rv, labels, fields, doc"


def dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def columns_of(info: KindInfo, obj: Mapping[str, Any]) -> tuple[str, str]:
    """The ``labels`` and ``fields`` columns of ``obj``: what watches filter on."""
    return dumps(sem.labels_of(obj)), dumps(selectable_fields(info.group, info.kind, obj))


class Row(NamedTuple):
    id: int
    rv: int
    labels: str
    fields: str
    doc: str


@dataclass(frozen=True, slots=True)
class Tables:
    """The statements a transaction runs on the objects, owner_refs, cluster_ips and events."""

    conn: sqlite3.Connection

    # ------------------------------------------------------------ reads
    def find(self, key: ObjectKey) -> Row | None:
        raw = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM objects "
            "WHERE grp = ? AND kind = ? AND namespace = ? AND name = ?",
            (key.group, key.kind, key.namespace, key.name),
        ).fetchone()
        return Row(*raw) if raw else None

    def by_id(self, row_id: int) -> Row | None:
        raw = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM objects WHERE id = ?", (row_id,)
        ).fetchone()
        return Row(*raw) if raw else None

    def uid_exists(self, uid: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM objects WHERE uid = ?", (uid,)).fetchone()
        return row is not None

    def cluster_ip_in_use(self, ip: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM cluster_ips WHERE ip = ?", (ip,)).fetchone()
        return row is not None

    def owned_by(self, uid: str) -> list[Row]:
        """Rows whose ownerReferences name ``uid``."""
        rows = self.conn.execute(
            "SELECT o.id, o.rv, o.labels, o.fields, o.doc FROM owner_refs r "
            "JOIN objects o ON o.id = r.object_id WHERE r.owner_uid = ?",
            (uid,),
        ).fetchall()
        return [Row(*raw) for raw in rows]

    def in_namespace(self, namespace: str) -> list[Row]:
        rows = self.conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM objects WHERE namespace = ?", (namespace,)
        ).fetchall()
        return [Row(*raw) for raw in rows]

    # ------------------------------------------------------------ writes
    def insert(
        self, key: ObjectKey, *, uid: str, rv: int, labels: str, fields: str, doc: str
    ) -> int:
        """Add an object's row; returns its id."""
        cursor = self.conn.execute(
            "INSERT INTO objects (grp, kind, namespace, name, uid, rv, labels, fields, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key.group, key.kind, key.namespace, key.name, uid, rv, labels, fields, doc),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update(self, row_id: int, *, rv: int, labels: str, fields: str, doc: str) -> None:
        self.conn.execute(
            "UPDATE objects SET rv = ?, labels = ?, fields = ?, doc = ? WHERE id = ?",
            (rv, labels, fields, doc, row_id),
        )

    def delete(self, row_id: int) -> None:
        """Remove an object's row and its index rows."""
        self.conn.execute("DELETE FROM objects WHERE id = ?", (row_id,))
        self.conn.execute("DELETE FROM owner_refs WHERE object_id = ?", (row_id,))
        self.conn.execute("DELETE FROM cluster_ips WHERE object_id = ?", (row_id,))

    def index(self, info: KindInfo, row_id: int, obj: Mapping[str, Any], *, fresh: bool) -> None:
        """Keep the owner and cluster-IP indexes in step with the object's current state."""
        owners = sem.owner_uids_of(obj)
        if not fresh:
            self.conn.execute("DELETE FROM owner_refs WHERE object_id = ?", (row_id,))
        if owners:
            self.conn.executemany(
                "INSERT OR IGNORE INTO owner_refs (owner_uid, object_id) VALUES (?, ?)",
                [(owner, row_id) for owner in owners],
            )
        ips = cluster_ips_of(info, obj)
        if ips or (info.kind == "Service" and not fresh):
            self.conn.execute("DELETE FROM cluster_ips WHERE object_id = ?", (row_id,))
            self.conn.executemany(
                "INSERT INTO cluster_ips (ip, object_id) VALUES (?, ?)",
                [(str(ipaddress.ip_address(ip)), row_id) for ip in ips],
            )

    def record(self, columns: Sequence[Any]) -> StoredEvent:
        """Add an event row (values in ``EVENT_COLUMNS`` order) and return the event."""
        self.conn.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            columns,
        )
        return event_from_columns(columns)


def event_from_columns(columns: Sequence[Any]) -> StoredEvent:
    """A ``StoredEvent`` from a row of ``EVENT_COLUMNS``."""
    rv, event_type, group, kind, namespace, name, labels, fields, prev_labels, prev_fields, doc = (
        columns
    )
    return StoredEvent(
        rv=rv,
        type=event_type,
        group=group,
        kind=kind,
        namespace=namespace,
        name=name,
        labels=json.loads(labels),
        fields=json.loads(fields),
        prev_labels=json.loads(prev_labels) if prev_labels is not None else None,
        prev_fields=json.loads(prev_fields) if prev_fields is not None else None,
        doc=doc,
    )
