"""The certificate manager of a node proxy: per-identity certificates fetched, cached, renewed.

Theory of operation. Each identity the node needs has one worker task that loops: ask
:func:`~ambientmesh.identity.rotation.seconds_until_fetch` how long to wait, wait on the
injected clock, take a fetch slot, fetch. A success replaces the cached credential and tells
subscribers (so listeners swap SSL contexts); a failure keeps the still-valid credential and
backs off. At most ``concurrency`` fetches run at once; identities someone is waiting for
(:meth:`CertificateManager.get`) get the next free slot before prefetches, as ztunnel's
priorities do. Workers live in the manager's TaskGroup (``async with manager:``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from ambientmesh.backoff import Backoff
from ambientmesh.clock import Clock
from ambientmesh.errors import IdentityError, MeshError, Unavailable
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.rotation import CertificateBackoff, Validity, seconds_until_fetch
from ambientmesh.identity.spiffe import Identity

log = logging.getLogger(__name__)

Subscriber = Callable[[Identity, Credential], None]


class CertificateFetcher(Protocol):
    """Gets a fresh credential for one identity (the real one is ``ca_client.CaClient``)."""

    async def fetch(self, identity: Identity) -> Credential: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateState:
    """One identity as the admin endpoint shows it."""

    identity: Identity
    credential: Credential | None
    failures: int
    last_error: str | None


class _Entry:
    """Mutable bookkeeping of one identity, owned by its worker."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.credential: Credential | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.urgent = False
        self.forgotten = False
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def validity(self) -> Validity | None:
        if self.credential is None:
            return None
        return Validity(not_before=self.credential.not_before, not_after=self.credential.not_after)

    def broadcast(self) -> None:
        """Wake everyone waiting on this entry; later waiters wait on a fresh event."""
        self.changed.set()
        self.changed = asyncio.Event()


class _FetchGate:
    """A semaphore that hands a freed slot to an urgent waiter before a background one."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiting: list[tuple[_Entry, asyncio.Future[None]]] = []

    async def acquire(self, entry: _Entry) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((entry, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                self._waiting.remove((entry, future))
            raise

    def release(self) -> None:
        if not self._waiting:
            self._free += 1
            return
        index = next((i for i, (entry, _) in enumerate(self._waiting) if entry.urgent), 0)
        _, future = self._waiting.pop(index)
        future.set_result(None)


class CertificateManager:
    """Fetches, caches and renews workload certificates for the identities on one node."""

    def __init__(
        self,
        fetcher: CertificateFetcher,
        *,
        clock: Clock,
        rng: random.Random,
        backoff: Backoff | None = None,
        concurrency: int = 8,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._rng = rng
        self._backoff = backoff or CertificateBackoff()
        self._gate = _FetchGate(concurrency)
        self._entries: dict[Identity, _Entry] = {}
        self._subscribers: list[Subscriber] = []
        self._tasks: asyncio.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for entry in list(self._entries.values()):
            self._stop(entry)
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        await tasks.__aexit__(exc_type, exc, traceback)

    def prefetch(self, identity: Identity) -> None:
        """Start keeping a certificate for ``identity`` (a pod with it was scheduled here)."""
        self._entry(identity)

    def forget(self, identity: Identity) -> None:
        """Stop renewing ``identity`` and drop its certificate (its last pod left the node)."""
        entry = self._entries.pop(identity, None)
        if entry is not None:
            self._stop(entry)

    def current(self, identity: Identity) -> Credential | None:
        """The cached, unexpired credential, without waiting or starting a fetch."""
        entry = self._entries.get(identity)
        return self._usable(entry) if entry is not None else None

    async def get(self, identity: Identity, *, max_wait: float = 10.0) -> Credential:
        """The credential for ``identity``, fetching it first if needed (at high priority).

        Raises Unavailable if none arrives within ``max_wait`` seconds of the injected clock
        (not ``asyncio.timeout``: tests drive time with a FakeClock).
        """
        entry = self._entry(identity)
        deadline = self._clock.monotonic() + max_wait
        while (credential := self._usable(entry)) is None:
            if entry.forgotten:
                raise Unavailable(f"certificate for {identity} was dropped while waiting")
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                reason = entry.last_error or "the first fetch has not finished"
                raise Unavailable(f"no certificate for {identity} within {max_wait:g}s: {reason}")
            entry.urgent = True
            await self._wait(entry.changed, remaining)
        return credential

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(identity, credential)`` on every new credential; returns unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def states(self) -> list[CertificateState]:
        return [
            CertificateState(
                identity=entry.identity,
                credential=entry.credential,
                failures=entry.failures,
                last_error=entry.last_error,
            )
            for entry in sorted(self._entries.values(), key=lambda entry: entry.identity)
        ]

    def _entry(self, identity: Identity) -> _Entry:
        entry = self._entries.get(identity)
        if entry is None:
            if self._tasks is None:
                raise Unavailable("certificate manager is not running (use 'async with')")
            entry = self._entries[identity] = _Entry(identity)
            entry.task = self._tasks.create_task(self._work(entry), name=f"certificate {identity}")
        return entry

    def _stop(self, entry: _Entry) -> None:
        entry.forgotten = True
        if entry.task is not None:
            entry.task.cancel()
        entry.broadcast()

    def _usable(self, entry: _Entry) -> Credential | None:
        validity = entry.validity()
        if validity is None or not validity.usable_at(self._clock.now()):
            return None
        return entry.credential

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        """Wait for ``event`` or ``seconds`` of the injected clock, whichever comes first."""
        async with asyncio.TaskGroup() as group:
            waiter = group.create_task(event.wait())
            timer = group.create_task(self._clock.sleep(seconds))
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            timer.cancel()

    async def _work(self, entry: _Entry) -> None:
        while True:
            delay = seconds_until_fetch(
                now=self._clock.now(),
                current=entry.validity(),
                failures=entry.failures,
                backoff=self._backoff,
                rng=self._rng,
            )
            if delay > 0:
                await self._clock.sleep(delay)
            await self._gate.acquire(entry)
            try:
                credential = await self._fetch(entry)
            finally:
                self._gate.release()
            if credential is not None:
                self._install(entry, credential)

    async def _fetch(self, entry: _Entry) -> Credential | None:
        try:
            credential = await self._fetcher.fetch(entry.identity)
            if credential.identity != entry.identity:
                raise IdentityError(f"CA returned {credential.identity} instead")
        except MeshError as error:
            self._failed(entry, error.message)
            return None
        except Exception as error:  # a bug in a fetcher must not stop every other identity
            log.exception("certificate fetch for %s crashed", entry.identity)
            self._failed(entry, f"{type(error).__name__}: {error}")
            return None
        return credential

    def _failed(self, entry: _Entry, message: str) -> None:
        entry.failures += 1
        entry.last_error = message
        log.warning(
            "fetching a certificate for %s failed (attempt %d, keeping %s): %s",
            entry.identity,
            entry.failures,
            "the current one" if self._usable(entry) else "none",
            message,
        )
        entry.broadcast()

    def _install(self, entry: _Entry, credential: Credential) -> None:
        entry.credential = credential
        entry.failures = 0
        entry.last_error = None
        entry.urgent = False
        entry.broadcast()
        for subscriber in list(self._subscribers):
            try:
                subscriber(entry.identity, credential)
            except Exception:  # one broken listener must not block the others' rotation
                log.exception("certificate subscriber failed for %s", entry.identity)
