"""Client side of delta discovery, without I/O: what to ask for, how to apply what arrives.

A session outlives its streams. It subscribes to every watched type with the wildcard,
decodes each response into typed updates, hands them to the watch's ``apply`` and answers
with an ACK, or with a NACK carrying the error when decoding or ``apply`` fails. Versions
are recorded only for what was applied, and sent as ``initial_resource_versions`` when a
new stream opens, so the server sends only what changed while we were away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from ambientmesh.errors import MeshError, RemoteProtocolError
from ambientmesh.proto.discovery_common_pb2 import Node, Status
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest, DeltaDiscoveryResponse
from ambientmesh.xds.types import WILDCARD

M = TypeVar("M", bound=Message)

_INVALID_ARGUMENT = 3  # google.rpc.Code


@dataclass(frozen=True, slots=True, kw_only=True)
class Update(Generic[M]):
    """One resource added or changed."""

    name: str
    version: str
    message: M
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Watch(Generic[M]):
    """A type to subscribe to, the message it carries and the function that applies it.

    ``apply(updates, removed)`` must apply everything or nothing: raising a MeshError rejects
    the whole response (NACK) and the previous state must stay in force.
    """

    type_url: str
    message_type: type[M]
    apply: Callable[[Sequence[Update[M]], Sequence[str]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The answer to one response, and what it did."""

    request: DeltaDiscoveryRequest
    type_url: str
    error: str = ""
    updated: int = 0
    removed: int = 0

    @property
    def accepted(self) -> bool:
        return not self.error


class ClientSession:
    """Subscription state that survives reconnects. Pure: no I/O, no clock."""

    def __init__(self, node: Node, watches: Sequence[Watch[Any]]) -> None:
        self._node = node
        self._watches = {watch.type_url: watch for watch in watches}
        self._versions: dict[str, dict[str, str]] = {url: {} for url in self._watches}
        self._answered: set[str] = set()

    @property
    def synced(self) -> bool:
        """True once the first response of every watched type has been processed."""
        return self._answered >= self._watches.keys()

    def versions(self, type_url: str) -> Mapping[str, str]:
        return self._versions[type_url]

    def opening_requests(self) -> list[DeltaDiscoveryRequest]:
        """The first request of each type on a new stream."""
        requests = []
        for type_url in self._watches:
            request = DeltaDiscoveryRequest(type_url=type_url, resource_names_subscribe=[WILDCARD])
            request.node.CopyFrom(self._node)
            request.initial_resource_versions.update(self._versions[type_url])
            requests.append(request)
        return requests

    def receive(self, response: DeltaDiscoveryResponse) -> Reply:
        """Apply one response; the reply's request is the ACK or NACK to send back."""
        type_url = response.type_url
        watch = self._watches.get(type_url)
        if watch is None:
            return self._nack(response, f"not subscribed to type {type_url!r}")
        try:
            updates = _decode(watch, response)
            removed = list(response.removed_resources)
            watch.apply(updates, removed)
        except MeshError as error:
            self._answered.add(type_url)
            return self._nack(response, error.message)
        versions = self._versions[type_url]
        for update in updates:
            versions[update.name] = update.version
        for name in removed:
            versions.pop(name, None)
        self._answered.add(type_url)
        ack = DeltaDiscoveryRequest(type_url=type_url, response_nonce=response.nonce)
        return Reply(request=ack, type_url=type_url, updated=len(updates), removed=len(removed))

    def _nack(self, response: DeltaDiscoveryResponse, error: str) -> Reply:
        nack = DeltaDiscoveryRequest(
            type_url=response.type_url,
            response_nonce=response.nonce,
            error_detail=Status(code=_INVALID_ARGUMENT, message=error),
        )
        return Reply(request=nack, type_url=response.type_url, error=error)


def _decode(watch: Watch[M], response: DeltaDiscoveryResponse) -> list[Update[M]]:
    updates: list[Update[M]] = []
    seen: set[str] = set()
    for resource in response.resources:
        name = resource.name
        if not name or name in seen:
            raise RemoteProtocolError(
                f"resource name {name!r} is empty or repeated in one response"
            )
        seen.add(name)
        if resource.resource.type_url != watch.type_url:
            raise RemoteProtocolError(
                f"resource {name!r} carries {resource.resource.type_url!r}, "
                f"expected {watch.type_url!r}"
            )
        try:
            message = watch.message_type.FromString(resource.resource.value)
        except DecodeError as error:
            raise RemoteProtocolError(f"resource {name!r} does not decode: {error}") from error
        updates.append(
            Update(
                name=name,
                version=resource.version,
                message=message,
                aliases=tuple(resource.aliases),
            )
        )
    return updates
