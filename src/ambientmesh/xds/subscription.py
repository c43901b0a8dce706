"""What one stream subscribed to for one type, what the client holds, and what to push next.

Theory of operation (Envoy's incremental xDS protocol, server side):

- The first request of a type on a stream opens the subscription. ``"*"`` subscribes to
  every resource; a first request naming nothing does too ("legacy wildcard"). Its
  ``initial_resource_versions`` say what the client already holds from an earlier stream,
  and the server then sends only what differs, plus removals for what no longer exists.
- Every response carries a fresh nonce. A request echoing it with no ``error_detail`` is an
  ACK; with one, a NACK. The stream is ordered, so answering a nonce also settles every
  older response still in flight.
- We track what the client holds optimistically: a resource counts as held once sent. On a
  NACK the resources of that response go back to what the client held before, and their
  rejected versions are remembered: they are not sent again until they change.
- Changes arrive as names (``mark_changed``); ``plan`` looks only at those, so the cost of
  a push grows with what changed, not with how many resources exist.
- At most ``max_in_flight`` responses wait for an answer; beyond that the subscription
  accumulates changes (bounded by the number of resources) until the client catches up.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ambientmesh.errors import InvalidInput
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest
from ambientmesh.xds.types import WILDCARD, Entry

# The version we record for "the client holds nothing under this name".
_ABSENT = ""


class Answer(enum.Enum):
    """How a request related to earlier responses."""

    NONE = "none"  # a subscription change, not an answer to a response
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"  # answers a nonce we no longer track (already settled, or never sent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """What the shell should know about a request it passed in (for logs and counters)."""

    answer: Answer
    nonce: str = ""
    error: str = ""
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    """One response to send: resources to add or update, names to remove."""

    nonce: str
    resources: tuple[Entry, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _InFlight:
    sent: dict[str, str]  # name -> version sent (_ABSENT for a removal)
    prior: dict[str, str]  # name -> version the client held before (_ABSENT if none)


class Subscription:
    """Server-side state of one type on one stream. Pure: no I/O, no clock."""

    def __init__(self, type_url: str, *, max_in_flight: int = 8, max_names: int = 100_000):
        self.type_url = type_url
        self.wildcard = False
        self.names: set[str] = set()
        self._max_in_flight = max_in_flight
        self._max_names = max_names
        self._started = False
        self._held: dict[str, str] = {}
        self._rejected: dict[str, str] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._dirty: set[str] = set()
        self._dirty_all = False
        self._forced: set[str] = set()
        self._must_respond = False

    # ------------------------------------------------------------------ input

    def on_request(self, request: DeltaDiscoveryRequest) -> Received:
        """Apply one request of this type. Raises InvalidInput for a request we refuse."""
        if not self._started:
            self._open(request)
        self._subscribe(request.resource_names_subscribe)
        self._unsubscribe(request.resource_names_unsubscribe)
        if not request.response_nonce:
            return Received(answer=Answer.NONE)
        error = request.error_detail.message if request.HasField("error_detail") else ""
        if request.HasField("error_detail") and not error:
            error = f"rejected with code {request.error_detail.code}"
        return self._settle(request.response_nonce, error)

    def mark_changed(self, names: Iterable[str]) -> None:
        """These resources changed (or appeared, or went away) on the server."""
        if not self._dirty_all:
            self._dirty.update(names)

    def mark_all(self) -> None:
        """Reconsider every resource (the view of this stream changed)."""
        self._dirty_all = True
        self._dirty.clear()

    def _open(self, request: DeltaDiscoveryRequest) -> None:
        self._started = True
        self._must_respond = True
        self._dirty_all = True
        self._held.update(request.initial_resource_versions)
        if not request.resource_names_subscribe:
            self.wildcard = True

    def _subscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name == WILDCARD:
                self.wildcard = True
                self._dirty_all = True
                continue
            if name not in self.names and len(self.names) >= self._max_names:
                raise InvalidInput(
                    f"{self.type_url}: more than {self._max_names} resource names subscribed"
                )
            self.names.add(name)
            self._forced.add(name)
            self._dirty.add(name)
            self._must_respond = True

    def _unsubscribe(self, names: Iterable[str]) -> None:
        for name in names:
            if name == WILDCARD:
                self.wildcard = False
                # The client drops what it no longer subscribes to; forget it too.
                for held in [n for n in self._held if n not in self.names]:
                    self._forget(held)
                continue
            self.names.discard(name)
            self._forced.discard(name)
            if not self.wildcard:
                self._forget(name)

    def _forget(self, name: str) -> None:
        self._held.pop(name, None)
        self._rejected.pop(name, None)

    def _settle(self, nonce: str, error: str) -> Received:
        if nonce not in self._in_flight:
            return Received(answer=Answer.STALE, nonce=nonce, error=error)
        # Responses are answered in order: everything sent before this nonce is settled too.
        while True:
            oldest, in_flight = next(iter(self._in_flight.items()))
            del self._in_flight[oldest]
            if oldest == nonce:
                break
        if not error:
            return Received(answer=Answer.ACK, nonce=nonce)
        for name, version in in_flight.sent.items():
            self._rejected[name] = version
            if self._held.get(name, _ABSENT) == version:
                self._restore(name, in_flight.prior[name])
        return Received(
            answer=Answer.NACK, nonce=nonce, error=error, rejected=tuple(sorted(in_flight.sent))
        )

    def _restore(self, name: str, version: str) -> None:
        if version == _ABSENT:
            self._held.pop(name, None)
        else:
            self._held[name] = version

    # ------------------------------------------------------------------ output

    @property
    def has_work(self) -> bool:
        return self._must_respond or self._dirty_all or bool(self._dirty)

    @property
    def ready(self) -> bool:
        """Something to send, and room to send it."""
        return self.has_work and len(self._in_flight) < self._max_in_flight

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def held(self) -> Mapping[str, str]:
        """Name -> version the client holds once every response in flight is applied."""
        return self._held

    def plan(
        self, entries: Mapping[str, Entry], visible: Callable[[str], bool], nonce: str
    ) -> Push | None:
        """The next response, or None when the client already holds everything it should."""
        if not self.ready:
            return None
        if self._dirty_all:
            candidates: Iterable[str] = entries.keys() | self._held.keys() | self._forced
        else:
            candidates = self._dirty | self._forced
        resources: list[Entry] = []
        removed: list[str] = []
        for name in candidates:
            entry = entries.get(name) if self._wants(name) and visible(name) else None
            self._classify(name, entry, resources, removed)
        must_respond = self._must_respond
        self._dirty.clear()
        self._dirty_all = False
        self._forced.clear()
        self._must_respond = False
        if not resources and not removed and not must_respond:
            return None
        self._record(nonce, resources, removed)
        return Push(nonce=nonce, resources=tuple(resources), removed=tuple(removed))

    def _wants(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def _classify(
        self, name: str, entry: Entry | None, resources: list[Entry], removed: list[str]
    ) -> None:
        held = self._held.get(name, _ABSENT)
        forced = name in self._forced
        if entry is None:
            # A name subscribed explicitly but unknown is answered with a removal, so the
            # client knows it does not exist (xDS: respond to every subscribed name).
            if forced or (held != _ABSENT and self._rejected.get(name) != _ABSENT):
                removed.append(name)
            return
        if forced or (entry.version != held and self._rejected.get(name) != entry.version):
            resources.append(entry)

    def _record(self, nonce: str, resources: list[Entry], removed: list[str]) -> None:
        sent: dict[str, str] = {}
        prior: dict[str, str] = {}
        for entry in resources:
            prior[entry.name] = self._held.get(entry.name, _ABSENT)
            sent[entry.name] = entry.version
            self._held[entry.name] = entry.version
            self._rejected.pop(entry.name, None)
        for name in removed:
            prior[name] = self._held.pop(name, _ABSENT)
            sent[name] = _ABSENT
            self._rejected.pop(name, None)
        self._in_flight[nonce] = _InFlight(sent, prior)
