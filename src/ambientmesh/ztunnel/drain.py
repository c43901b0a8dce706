"""Graceful shutdown (SIGTERM or ``/quitquitquit``): stop accepting, GOAWAY, drain with a deadline.

Every pod proxy closes its listeners at once (a restarted ztunnel bound beside us takes new
connections from then on), sends GOAWAY on every inbound HBONE connection so peers open new
ones elsewhere, and waits for open connections to finish, at most ``deadline`` seconds
(ztunnel's CONNECTION_TERMINATION_DEADLINE, 5 s by default). Whatever is still open after
that is cut when the caller cancels the proxies.
"""

from __future__ import annotations

import logging

from ambientmesh.clock import Clock
from ambientmesh.ztunnel.connections import ConnectionRegistry
from ambientmesh.ztunnel.pods import PodProxies

log = logging.getLogger(__name__)


async def drain(
    pods: PodProxies, connections: ConnectionRegistry, *, deadline: float, clock: Clock
) -> None:
    started = clock.monotonic()
    log.info(
        "draining %d pod proxies (%d inbound connections) for at most %gs",
        len(pods.proxies),
        len(connections),
        deadline,
    )
    await pods.drain(deadline)
    left = len(connections)
    log.info(
        "drained in %.2fs%s",
        clock.monotonic() - started,
        f"; closing {left} inbound connections still open" if left else "",
    )
