"""When to fetch a workload certificate: renewal at half-life and a jittered exponential backoff.

Pure arithmetic on times the caller supplies; the certificate manager does the waiting.
Istio's ztunnel renews at ``not_before + lifetime / 2`` and, when the CA fails, keeps the
still-valid certificate and retries with exponential backoff capped at 150 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from ambientmesh.backoff import Backoff
from ambientmesh.errors import InvalidInput

# After a success, never plan the next fetch sooner than this: a certificate that arrives
# already past its half-life (a CA clock behind ours) must not cause a tight refetch loop.
MIN_REFRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateBackoff(Backoff):
    """Retries of a failed certificate fetch: 0.5 s doubling to ztunnel's 150 s cap, ±20 %."""

    initial: float = 0.5
    maximum: float = 150.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        Backoff.__post_init__(self)  # slotted dataclasses cannot use bare super()
        if self.initial == 0:  # retrying at once would hammer a CA that is down
            raise InvalidInput("backoff needs a positive initial delay for certificate fetches")


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    not_before: datetime
    not_after: datetime

    @property
    def renew_at(self) -> datetime:
        """Half-life, as Istio's ztunnel: ``not_before + (not_after - not_before) / 2``."""
        return self.not_before + (self.not_after - self.not_before) / 2

    def usable_at(self, now: datetime) -> bool:
        return now < self.not_after


def seconds_until_fetch(
    *,
    now: datetime,
    current: Validity | None,
    failures: int,
    backoff: Backoff,
    rng: random.Random,
) -> float:
    """How long to wait before the next fetch of one identity's certificate.

    - never fetched, or the last certificate expired, and no failure: fetch now;
    - after a failure: back off, whether or not a still-valid certificate is held;
    - otherwise: wait for the half-life of the current certificate.
    """
    if failures > 0:
        return backoff.delay(failures, rng)
    if current is None or not current.usable_at(now):
        return 0.0
    return max((current.renew_at - now).total_seconds(), MIN_REFRESH_SECONDS)
