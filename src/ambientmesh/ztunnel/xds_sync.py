"""Discovery responses into ``State``: ACK or NACK each one, tell listeners what changed, and let
connections wait for a workload that has not arrived yet.

The delta client (``ambientmesh.xds.client``) keeps the stream; this module is the typed
handler it calls for ``Address`` and ``Authorization``. An invalid address is left out (its last
good version stays in force) and an invalid policy is replaced by a fail-closed stand-in
(``xds_convert``); in both cases the good part of the response is applied and the response is
NACKed with every problem, so the control plane's status shows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ambientmesh.clock import Clock
from ambientmesh.errors import InvalidInput
from ambientmesh.hbone.timing import wait_until
from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.workload_pb2 import Address
from ambientmesh.xds.session import Update, Watch
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL
from ambientmesh.ztunnel.state import State, StateChange
from ambientmesh.ztunnel.xds_convert import Converted, address_update, authorization_update

log = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[StateChange], None]


class XdsSync:
    """Owns the proxy's ``State``; the only writer of it."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.messages: dict[str, int] = {ADDRESS_TYPE_URL: 0, AUTHORIZATION_TYPE_URL: 0}
        self.rejected: dict[str, int] = {ADDRESS_TYPE_URL: 0, AUTHORIZATION_TYPE_URL: 0}
        self.last_error = ""
        self._listeners: list[Listener] = []
        self._changed: asyncio.Future[None] | None = None

    def watches(self) -> list[Watch[Any]]:
        """What the delta client subscribes to (Istio's two ztunnel types)."""
        return [
            Watch(type_url=ADDRESS_TYPE_URL, message_type=Address, apply=self.apply_addresses),
            Watch(
                type_url=AUTHORIZATION_TYPE_URL,
                message_type=Authorization,
                apply=self.apply_authorizations,
            ),
        ]

    def subscribe(self, listener: Listener) -> None:
        """``listener(change)`` runs after every apply that changed something."""
        self._listeners.append(listener)

    def apply_addresses(self, updates: Sequence[Update[Address]], removed: Sequence[str]) -> None:
        result = address_update([(u.name, u.message) for u in updates], removed)
        self._apply(ADDRESS_TYPE_URL, result)

    def apply_authorizations(
        self, updates: Sequence[Update[Authorization]], removed: Sequence[str]
    ) -> None:
        result = authorization_update([(u.name, u.message) for u in updates], removed)
        self._apply(AUTHORIZATION_TYPE_URL, result)

    def _apply(self, type_url: str, result: Converted) -> None:
        self.messages[type_url] += 1
        change = self.state.apply(result.update)
        if not change.empty:
            self._notify(change)
        if result.errors:
            self.rejected[type_url] += 1
            self.last_error = "; ".join(error.message for error in result.errors)
            # The session turns this into a NACK; what was valid has been applied above.
            raise InvalidInput(self.last_error)

    def _notify(self, change: StateChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one broken listener must not stop configuration
                log.exception("state listener failed")
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    async def wait_for(
        self, lookup: Callable[[], T | None], *, clock: Clock, seconds: float
    ) -> T | None:
        """``lookup()`` as soon as it is not None, re-tried after every change, for at most
        ``seconds`` of ``clock`` time; None if it never was (ztunnel waits 5 s for a workload)."""
        found = lookup()
        deadline = clock.monotonic() + seconds
        while found is None:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return None
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await wait_until(self._changed, clock, remaining)
            found = lookup()
        return found
