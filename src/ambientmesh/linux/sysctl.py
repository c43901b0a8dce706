"""Kernel parameters of one network namespace (`net.*` sysctls are per namespace)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ambientmesh.errors import InvalidInput
from ambientmesh.linux import netns
from ambientmesh.linux.errors import LinuxError

_KEY = re.compile(r"[a-z0-9_]+(\.[A-Za-z0-9_\-]+)+")


def proc_path(key: str) -> Path:
    """/proc/sys path of a dotted key like ``net.ipv4.ip_forward``."""
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"invalid sysctl name {key!r}")
    return Path("/proc/sys", *key.split("."))


async def write(values: Mapping[str, str | int], *, netns_name: str | None = None) -> None:
    """Set each sysctl in `values`, in order, inside `netns_name` (None: this namespace)."""
    items = [(proc_path(key), str(value)) for key, value in values.items()]
    await netns.call_in(netns_name, _write_all, items)


async def read(key: str, *, netns_name: str | None = None) -> str:
    return await netns.call_in(netns_name, _read, proc_path(key))


def _write_all(items: list[tuple[Path, str]]) -> None:
    # /proc/sys/net resolves against the namespace of the thread that opens it.
    for path, value in items:
        try:
            path.write_text(value + "\n")
        except OSError as exc:
            raise LinuxError(f"cannot set {path} to {value!r}: {exc.strerror}") from exc


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise LinuxError(f"cannot read {path}: {exc.strerror}") from exc
