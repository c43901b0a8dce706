"""The SQLite schema and connection settings of the resource store.

Every object is one row of ``objects`` holding its JSON document, with the columns lists
filter on (key, labels, selectable fields) beside it. Every committed change is one row of
``events``, keyed by its resourceVersion, kept for a bounded number of changes so watches can
resume. ``owner_refs`` indexes ownerReferences for garbage collection; ``cluster_ips`` records
which Service holds which cluster IP. ``meta`` holds the resourceVersion counter and the
resourceVersion up to which history was compacted.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ambientmesh.errors import Unavailable

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    id INTEGER PRIMARY KEY,
    grp TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    uid TEXT NOT NULL,
    rv INTEGER NOT NULL,
    labels TEXT NOT NULL,
    fields TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_key ON objects (grp, kind, namespace, name);
CREATE UNIQUE INDEX IF NOT EXISTS objects_by_uid ON objects (uid);
CREATE INDEX IF NOT EXISTS objects_by_namespace ON objects (namespace);
CREATE TABLE IF NOT EXISTS owner_refs (
    owner_uid TEXT NOT NULL,
    object_id INTEGER NOT NULL,
    PRIMARY KEY (owner_uid, object_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS owner_refs_by_object ON owner_refs (object_id);
CREATE TABLE IF NOT EXISTS cluster_ips (
    ip TEXT PRIMARY KEY,
    object_id INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cluster_ips_by_object ON cluster_ips (object_id);
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    grp TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL,
    fields TEXT NOT NULL,
    prev_labels TEXT,
    prev_fields TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_kind ON events (grp, kind, rv);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', 1), ('rv', 0), ('compacted_rv', 0);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with full fsync on commit, so an acknowledged commit survives
    a crash of the process (or of the machine) at any moment."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # A larger page cache keeps list scans of a few hundred MB of objects in memory.
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
    except sqlite3.Error as error:
        raise Unavailable(f"cannot open the resource store at {path}: {error}") from error
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{_DDL}\nCOMMIT;")
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.Error as error:
        raise Unavailable(f"cannot initialise the resource store: {error}") from error
    if version != SCHEMA_VERSION:
        raise Unavailable(
            f"the resource store has schema version {version}; this build reads version "
            f"{SCHEMA_VERSION}"
        )
