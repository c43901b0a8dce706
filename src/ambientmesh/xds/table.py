"""The server's resources: per type URL, name -> encoded resource and content version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from google.protobuf.message import Message

from ambientmesh.xds.encoding import encode_resource
from ambientmesh.xds.types import Entry

_EMPTY: Mapping[str, Entry] = {}


def content_version(value: bytes) -> str:
    """A version derived from the content alone.

    Content addressing makes versions survive a control-plane restart: a proxy reconnecting
    with ``initial_resource_versions`` is sent only what really changed.
    """
    return hashlib.blake2b(value, digest_size=8).hexdigest()


class ResourceTable:
    """Resources by type URL and name. Writers call ``apply``; readers take ``entries``.

    Entries are immutable, so a reader holding the mapping of one type sees a consistent
    snapshot of each entry even while later ``apply`` calls replace them.
    """

    def __init__(self) -> None:
        self._types: dict[str, dict[str, Entry]] = {}
        self._sequence: dict[str, int] = {}

    def entries(self, type_url: str) -> Mapping[str, Entry]:
        return self._types.get(type_url, _EMPTY)

    def get(self, type_url: str, name: str) -> Entry | None:
        return self._types.get(type_url, _EMPTY).get(name)

    def system_version(self, type_url: str) -> str:
        """How many changes this type has seen; sent as ``system_version_info`` for debugging."""
        return str(self._sequence.get(type_url, 0))

    def apply(
        self,
        type_url: str,
        changes: Mapping[str, Message | None],
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> list[str]:
        """Upsert (message) or delete (None) resources; return the names whose content changed."""
        table = self._types.setdefault(type_url, {})
        changed: list[str] = []
        for name, message in changes.items():
            if message is None:
                if table.pop(name, None) is not None:
                    changed.append(name)
                continue
            # Deterministic: map fields (Workload.services) must encode the same every time
            # for the content version to be stable.
            value = message.SerializeToString(deterministic=True)
            names = tuple((aliases or {}).get(name, ()))
            version = content_version(value + "\0".join(names).encode())
            current = table.get(name)
            if current is not None and current.version == version:
                continue
            encoded = encode_resource(
                name=name,
                version=version,
                type_url=type_url,
                value=value,
                aliases=names,
            )
            table[name] = Entry(name, version, encoded)
            changed.append(name)
        if changed:
            self._sequence[type_url] = self._sequence.get(type_url, 0) + 1
        return changed
