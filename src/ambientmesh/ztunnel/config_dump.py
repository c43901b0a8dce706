"""What a ztunnel knows, as JSON for ``/config_dump``: workloads, services, policies,
certificates, the pods it proxies and its connections to the control plane and node agent."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ambientmesh.identity.manager import CertificateState
from ambientmesh.identity.spiffe import Identity
from ambientmesh.ztunnel.model import NamespacedHostname, NetworkAddress, SocketAddr
from ambientmesh.ztunnel.state import State

# Derived fields that repeat what is already in the dump.
_SKIPPED = frozenset({"key"})


def jsonable(value: Any) -> Any:
    """Our frozen values as JSON: dataclasses by field, enums by value, addresses as text."""
    if isinstance(value, Identity | NamespacedHostname | NetworkAddress | SocketAddr):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            _camel(f.name): jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name not in _SKIPPED
        }
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        items = [jsonable(item) for item in value]
        return sorted(items, key=str) if isinstance(value, frozenset | set) else items
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def state_dump(state: State) -> dict[str, Any]:
    return {
        "workloads": [jsonable(w) for w in state.all_workloads()],
        "services": [jsonable(s) for s in state.all_services()],
        "policies": [jsonable(p) for p in state.all_policies()],
    }


def certificates_dump(states: Iterable[CertificateState]) -> list[dict[str, Any]]:
    out = []
    for entry in states:
        credential = entry.credential
        out.append(
            {
                "identity": str(entry.identity),
                "state": "Available" if credential is not None else "Initializing",
                "validFrom": credential.not_before.isoformat() if credential else None,
                "expirationTime": credential.not_after.isoformat() if credential else None,
                "failures": entry.failures,
                "lastError": entry.last_error,
            }
        )
    return out
