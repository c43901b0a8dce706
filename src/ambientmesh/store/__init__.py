"""The persistent resource store: Kubernetes API semantics over SQLite in WAL mode.

``Store`` is the synchronous core (one writer, reads from any thread); ``AsyncStore`` adds
group commit and watches for asyncio code. Admission functions live in ``admission``.
"""

from ambientmesh.store.admission import DEFAULT_ADMISSION, Admission, AdmissionRequest
from ambientmesh.store.aio import AsyncStore, Watch
from ambientmesh.store.semantics import Forbidden, ObjectInvalid
from ambientmesh.store.store import Store, StoreConfig
from ambientmesh.store.types import ApplyResult, ObjectKey, ObjectList, WatchEvent

__all__ = [
    "DEFAULT_ADMISSION",
    "Admission",
    "AdmissionRequest",
    "ApplyResult",
    "AsyncStore",
    "Forbidden",
    "ObjectInvalid",
    "ObjectKey",
    "ObjectList",
    "Store",
    "StoreConfig",
    "Watch",
    "WatchEvent",
]
