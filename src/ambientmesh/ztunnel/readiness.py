"""Readiness (15021 ``/healthz/ready``): true once configuration and the pod snapshot arrived.

As ztunnel: the first discovery sync of every type, and the node agent's first complete
snapshot with no pod proxy left pending. Until then the answer is 503 naming what is missing.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

Condition = Callable[[], bool]


class Readiness:
    """Named conditions, all of which must hold."""

    def __init__(self) -> None:
        self._conditions: dict[str, Condition] = {}

    def require(self, name: str, condition: Condition) -> None:
        self._conditions[name] = condition

    def missing(self) -> list[str]:
        return [name for name, holds in self._conditions.items() if not holds()]

    @property
    def ready(self) -> bool:
        return not self.missing()

    def routes(self) -> list[web.RouteDef]:
        async def ready(request: web.Request) -> web.Response:
            missing = self.missing()
            if missing:
                return web.Response(
                    status=503, text=f"not ready: waiting for {', '.join(missing)}\n"
                )
            return web.Response(text="ready\n")

        return [web.get("/healthz/ready", ready)]
