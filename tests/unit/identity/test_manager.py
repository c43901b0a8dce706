from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from ambientmesh.errors import Unavailable
from ambientmesh.identity.credential import Credential
from ambientmesh.identity.manager import CertificateManager
from ambientmesh.identity.rotation import CertificateBackoff
from ambientmesh.identity.spiffe import Identity
from ambientmesh.testing.clock import FakeClock

A = Identity.parse("spiffe://cluster.local/ns/a/sa/a")
B = Identity.parse("spiffe://cluster.local/ns/b/sa/b")
C = Identity.parse("spiffe://cluster.local/ns/c/sa/c")
D = Identity.parse("spiffe://cluster.local/ns/d/sa/d")
HOUR = 3600.0


class ScriptedCa:
    """A fetcher whose outages and stalls the test scripts; it records when it was called."""

    def __init__(self, clock: FakeClock, lifetime: timedelta = timedelta(hours=24)) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[tuple[float, Identity]] = []
        self.down = False
        self.stall: asyncio.Event | None = None
        self.wrong_identity = False
        self.serial = 0
        self._called = asyncio.Event()

    async def called(self, times: int) -> None:
        """Wait (on the event loop, not the clock) until fetch has been called ``times`` times."""
        while len(self.calls) < times:
            await self._called.wait()
            self._called.clear()

    async def fetch(self, identity: Identity) -> Credential:
        self.calls.append((self.clock.monotonic(), identity))
        self._called.set()
        if self.stall is not None:
            await self.stall.wait()
        if self.down:
            raise Unavailable("CA is down")
        self.serial += 1
        now = self.clock.now()
        return Credential(
            identity=B if self.wrong_identity else identity,
            chain_pem=f"chain {self.serial}".encode(),
            key_pem=b"key",
            not_before=now,
            not_after=now + self.lifetime,
        )

    def times(self) -> list[float]:
        return [moment for moment, _ in self.calls]


class Rotations:
    """A subscriber that records new credentials and lets the test wait for the n-th."""

    def __init__(self) -> None:
        self.chains: list[bytes] = []
        self._event = asyncio.Event()

    def __call__(self, identity: Identity, credential: Credential) -> None:
        self.chains.append(credential.chain_pem)
        self._event.set()

    async def seen(self, count: int) -> None:
        while len(self.chains) < count:
            await self._event.wait()
            self._event.clear()


def manager(ca: ScriptedCa, **kwargs: object) -> CertificateManager:
    return CertificateManager(
        ca,
        clock=ca.clock,
        rng=random.Random(7),
        backoff=CertificateBackoff(jitter=0),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_get_fetches_once_then_serves_from_cache() -> None:
    ca = ScriptedCa(FakeClock(autojump=True))
    async with manager(ca) as certificates:
        first = await certificates.get(A)
        assert await certificates.get(A) is first
        assert certificates.current(A) is first
    assert ca.calls == [(0.0, A)]


async def test_renews_at_half_life_and_tells_subscribers_each_time() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    rotations = Rotations()
    async with manager(ca) as certificates:
        certificates.subscribe(rotations)
        certificates.prefetch(A)
        await rotations.seen(4)
        assert certificates.current(A) is not None
    assert ca.times() == [0, 12 * HOUR, 24 * HOUR, 36 * HOUR]
    assert rotations.chains == [b"chain 1", b"chain 2", b"chain 3", b"chain 4"]


async def test_outage_keeps_the_valid_certificate_and_backs_off_exponentially() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    rotations = Rotations()
    async with manager(ca) as certificates:
        certificates.subscribe(rotations)
        held = await certificates.get(A)
        ca.down = True
        await ca.called(6)
        assert certificates.current(A) is held  # still valid, still served
        assert ca.times() == [0, 12 * HOUR] + [12 * HOUR + t for t in (0.5, 1.5, 3.5, 7.5)]
        ca.down = False
        await rotations.seen(2)
        assert ca.times()[-1] == 12 * HOUR + 15.5
        assert certificates.current(A) is not held


async def test_backoff_is_capped_at_150_seconds_like_ztunnel() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    ca.down = True
    async with manager(ca) as certificates:
        certificates.prefetch(A)
        await ca.called(14)
    gaps = [later - earlier for earlier, later in zip(ca.times(), ca.times()[1:], strict=False)]
    assert gaps[:9] == [0.5, 1, 2, 4, 8, 16, 32, 64, 128]
    assert set(gaps[9:]) == {150}


async def test_jitter_uses_the_injected_random_source() -> None:
    async def schedule(seed: int) -> list[float]:
        clock = FakeClock(autojump=True)
        ca = ScriptedCa(clock)
        ca.down = True
        rng = random.Random(seed)
        async with CertificateManager(ca, clock=clock, rng=rng) as certificates:
            certificates.prefetch(A)
            await ca.called(5)
        return ca.times()

    assert await schedule(1) == await schedule(1)
    assert await schedule(1) != await schedule(2)


async def test_an_expired_certificate_is_not_served_during_an_outage() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock, lifetime=timedelta(minutes=10))
    async with manager(ca) as certificates:
        await certificates.get(A)
        ca.down = True
        await ca.called(12)  # renewal at 300 s, retries until 705.5 s: past the expiry at 600 s
        assert clock.monotonic() == 705.5
        assert certificates.current(A) is None
        with pytest.raises(Unavailable, match="within 5s: CA is down"):
            await certificates.get(A, max_wait=5)
        ca.down = False
        assert (await certificates.get(A, max_wait=200)).chain_pem == b"chain 2"


async def test_get_gives_up_at_its_deadline_while_the_ca_stalls() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    ca.stall = asyncio.Event()
    async with manager(ca) as certificates:
        with pytest.raises(Unavailable, match="the first fetch has not finished"):
            await certificates.get(A, max_wait=3)
        assert clock.monotonic() == 3
        ca.stall.set()


async def test_a_certificate_for_another_identity_is_refused() -> None:
    """As ztunnel's CA client: the returned leaf must be the identity asked for."""
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    ca.wrong_identity = True
    async with manager(ca) as certificates:
        with pytest.raises(Unavailable, match="CA returned spiffe:"):
            await certificates.get(A, max_wait=1)


async def test_forget_stops_renewal_and_fails_waiters() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    ca.stall = asyncio.Event()

    async def waiter(certificates: CertificateManager) -> None:
        with pytest.raises(Unavailable, match="dropped while waiting"):
            await certificates.get(A, max_wait=100)

    async with manager(ca) as certificates, asyncio.TaskGroup() as group:
        group.create_task(waiter(certificates))
        await ca.called(1)
        certificates.forget(A)
    assert certificates.current(A) is None
    assert certificates.states() == []


async def test_waiters_are_served_before_prefetches() -> None:
    """ztunnel fetches on-path identities before background prefetches."""
    clock = FakeClock()
    ca = ScriptedCa(clock)
    ca.stall = asyncio.Event()
    async with manager(ca, concurrency=1) as certificates:
        for identity in (A, B, C):
            certificates.prefetch(identity)
        await ca.called(1)  # A holds the only slot; B and C queue behind it
        async with asyncio.TaskGroup() as group:
            task = group.create_task(certificates.get(D, max_wait=10))
            for _ in range(5):
                await asyncio.sleep(0)  # let D queue up too
            ca.stall.set()
            await task
    assert [identity for _, identity in ca.calls][:2] == [A, D]


async def test_a_broken_subscriber_does_not_stop_the_others() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    seen: list[Identity] = []

    def broken(identity: Identity, credential: Credential) -> None:
        raise RuntimeError("listener bug")

    async with manager(ca) as certificates:
        certificates.subscribe(broken)
        unsubscribe = certificates.subscribe(lambda identity, cred: seen.append(identity))
        await certificates.get(A)
        unsubscribe()
        await certificates.get(B)
    assert seen == [A]


async def test_a_crashing_fetcher_is_a_failure_not_the_end_of_the_manager() -> None:
    clock = FakeClock(autojump=True)
    ca = ScriptedCa(clock)
    original = ca.fetch
    crashes = [True]

    async def flaky(identity: Identity) -> Credential:
        if crashes.pop() if crashes else False:
            raise RuntimeError("bug")
        return await original(identity)

    ca.fetch = flaky  # type: ignore[method-assign]
    async with manager(ca) as certificates:
        credential = await certificates.get(A, max_wait=5)
        assert credential.identity == A
        state = certificates.states()[0]
        assert (state.failures, state.last_error) == (0, None)


async def test_using_it_outside_async_with_is_an_error() -> None:
    ca = ScriptedCa(FakeClock())
    with pytest.raises(Unavailable, match="not running"):
        manager(ca).prefetch(A)
