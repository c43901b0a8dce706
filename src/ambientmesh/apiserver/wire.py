"""What both API clients send and how they read answers: URLs, parameters, bodies, failures."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.paths import collection_path
from ambientmesh.apiserver.status import error_from_status
from ambientmesh.errors import InvalidInput, RemoteProtocolError, Unavailable
from ambientmesh.resources import kinds
from ambientmesh.resources.kinds import KindInfo
from ambientmesh.store.types import ApplyResult, ObjectList, WatchEvent

# Reads wait longer than a server's bookmark interval (10 s) times three before a watch is
# declared dead; plain requests get the same budget, enough for a queued group commit.
DEFAULT_TIMEOUT = 35.0


def _namespace(kind: KindInfo, namespace: str | None) -> str | None:
    return (namespace or "default") if kind.namespaced else None


def object_url(kind: KindInfo, name: str, namespace: str | None, version: str | None = None) -> str:
    return f"{collection_path(kind, version, _namespace(kind, namespace))}/{name}"


def url_of(obj: Mapping[str, Any], *, status: bool = False) -> str:
    """The URL of ``obj`` at the version it is written in."""
    api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind_name, str):
        raise InvalidInput("the object needs apiVersion and kind")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        raise InvalidInput(f"the {kind_name} needs metadata.name")
    kind = kinds.lookup(api_version, kind_name)
    version = kinds.split_api_version(api_version)[1]
    url = object_url(kind, str(metadata["name"]), metadata.get("namespace"), version)
    return f"{url}/status" if status else url


def create_url(obj: Mapping[str, Any]) -> str:
    api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind_name, str):
        raise InvalidInput("the object needs apiVersion and kind")
    kind = kinds.lookup(api_version, kind_name)
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    version = kinds.split_api_version(api_version)[1]
    return collection_path(kind, version, _namespace(kind, namespace))


def selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def watch_params(
    resource_version: str | None,
    label_selector: str | None,
    field_selector: str | None,
    timeout_seconds: int | None,
) -> dict[str, str]:
    params = {"watch": "true", "allowWatchBookmarks": "true"}
    params.update(selectors(label_selector, field_selector))
    if resource_version:
        params["resourceVersion"] = resource_version
    if timeout_seconds:
        params["timeoutSeconds"] = str(timeout_seconds)
    return params


def decode(status: int, content: bytes) -> Any:
    try:
        body = json.loads(content) if content else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = content.decode(errors="replace")
    if status >= 400:
        raise error_from_status(status, body)
    return body


def object_list(body: Any) -> ObjectList:
    return ObjectList(
        items=list(body.get("items") or []),
        resource_version=str(body.get("metadata", {}).get("resourceVersion", "")),
    )


def apply_results(body: Any) -> list[ApplyResult]:
    return [
        ApplyResult(
            kind=item["kind"],
            namespace=item.get("namespace"),
            name=item["name"],
            action=item["action"],
        )
        for item in body.get("items", [])
    ]


def watch_event(line: str) -> WatchEvent | None:
    """One line of a watch stream; None for a keep-alive; errors raise."""
    if not line.strip():
        return None
    try:
        raw = json.loads(line)
        event = WatchEvent(type=str(raw["type"]), object=dict(raw["object"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RemoteProtocolError(f"malformed watch event from the API server: {error}") from None
    if event.type == "ERROR":
        raise error_from_status(int(event.object.get("code") or 500), event.object)
    return event


def unreachable(address: ServerAddress, error: Exception) -> Unavailable:
    reason = str(error) or type(error).__name__
    return Unavailable(
        f"cannot reach the API server at {address.describe()}: {reason}; "
        "is the cluster running? (ambientmesh up)"
    )


def check_socket(address: ServerAddress) -> None:
    """Fail fast, with the usual message, when the socket file is not there at all (this
    also spares httpcore's sync backend, which leaks the socket of a failed unix connect)."""
    if address.socket is not None and not address.socket.exists():
        raise unreachable(address, FileNotFoundError("no such socket"))


def broken(address: ServerAddress, error: Exception) -> Unavailable:
    reason = str(error) or type(error).__name__
    return Unavailable(f"the connection to the API server at {address.describe()} broke: {reason}")


def http_options(address: ServerAddress, timeout: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    if address.socket is not None:
        return {"base_url": "http://apiserver", "timeout": timeout, "limits": limits}
    return {
        "base_url": address.url,
        "verify": address.tls_context(),
        "timeout": timeout,
        "limits": limits,
    }
