"""Per-pod proxies: what the node agent hands over on ZDS becomes three listeners in the pod.

``PodProxies`` is the ZDS ``WorkloadHandler``. For each enrolled pod it binds 15001 (outbound),
15006 (inbound plaintext) and 15008 (HBONE) inside the pod's network namespace, with
SO_REUSEPORT so a restarted ztunnel binds beside a draining one, and serves them in one task.
Deleting the pod cancels that task: its listeners and connections go at once (the application
is gone; the HBONE server cuts its connections when cancelled). On shutdown every pod stops
accepting, then drains (see ``drain``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ambientmesh.capture.zds_client import PodWorkload
from ambientmesh.errors import MeshError, Unavailable
from ambientmesh.hbone.server import HboneServer
from ambientmesh.identity.spiffe import Identity
from ambientmesh.io.sockets import SocketAddress
from ambientmesh.ztunnel.context import ProxyContext
from ambientmesh.ztunnel.inbound_proxy import InboundProxy
from ambientmesh.ztunnel.inbound_relays import InboundRelays
from ambientmesh.ztunnel.listeners import accept_forever, take_backlog
from ambientmesh.ztunnel.model import (
    DEFAULT_SERVICE_ACCOUNT,
    HBONE_PORT,
    INBOUND_PLAINTEXT_PORT,
    OUTBOUND_PORT,
)
from ambientmesh.ztunnel.outbound_proxy import OutboundProxy
from ambientmesh.ztunnel.plaintext_proxy import PlaintextProxy
from ambientmesh.ztunnel.pod_network import PodNetwork, PodNetworkFactory
from ambientmesh.ztunnel.waiting import wait_event

log = logging.getLogger(__name__)

Handle = Callable[[socket.socket], Coroutine[Any, Any, None]]


class PodProxy:
    """The listeners of one enrolled pod and every connection they accepted."""

    def __init__(self, context: ProxyContext, workload: PodWorkload, network: PodNetwork) -> None:
        self.uid = workload.uid
        self.info = workload.info
        self.identity = Identity(
            trust_domain=context.config.trust_domain,
            namespace=workload.info.namespace,
            service_account=workload.info.service_account or DEFAULT_SERVICE_ACCOUNT,
        )
        self._ctx = context
        self._network = network
        self._listeners: dict[int, socket.socket] = {}
        self._accepting: list[asyncio.Task[None]] = []
        self._handlers: dict[int, Handle] = {}
        self._group: asyncio.TaskGroup | None = None
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.hbone: HboneServer | None = None

    def open(self) -> None:
        """Bind the three listeners inside the pod; nothing stays bound if one fails."""
        self._network.prepare()
        try:
            for port in (OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT):
                self._listeners[port] = self._network.listener(port)
        except BaseException:
            self._close_listeners()
            raise

    async def run(self) -> None:
        """Serve until cancelled (the pod left) or drained (shutdown)."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                relays = InboundRelays(self._ctx, group)
                inbound = InboundProxy(self._ctx, self.info, self._network, relays)
                self.hbone = HboneServer(
                    handler=inbound.handle,
                    tls=self._tls,
                    trust_domain=self._ctx.config.trust_domain,
                    config=self._ctx.config.hbone,
                    clock=self._ctx.clock,
                )
                outbound = OutboundProxy(self._ctx, self.info, self._network)
                plaintext = PlaintextProxy(self._ctx, self.info, self._network, relays)
                self._handlers = {
                    OUTBOUND_PORT: self._tracked(outbound.handle),
                    INBOUND_PLAINTEXT_PORT: self._tracked(plaintext.handle),
                }
                clock = self._ctx.clock
                for port, handle in self._handlers.items():
                    accept = accept_forever(self._listeners[port], handle, group, clock)
                    self._accepting.append(group.create_task(accept))
                group.create_task(self.hbone.serve(self._listeners[HBONE_PORT]))
        finally:
            self._close_listeners()

    async def stop_accepting(self) -> None:
        """Close the listeners: 15001 and 15006 after serving what is already queued on them,
        15008 at once (the kernel moves its queue to a ztunnel bound beside us)."""
        for task in self._accepting:
            task.cancel()
        self._accepting.clear()
        if self._group is not None:
            for port, handle in self._handlers.items():
                listener = self._listeners.pop(port, None)
                if listener is not None:
                    take_backlog(listener, handle, self._group)
        if self.hbone is not None:
            await self.hbone.stop_accepting()

    async def drain(self, grace: float) -> None:
        """Stop accepting, GOAWAY every HBONE client, and wait up to ``grace`` seconds for the
        open connections to finish; the caller cancels what is left."""
        await self.stop_accepting()
        async with asyncio.TaskGroup() as group:
            if self.hbone is not None:
                group.create_task(self.hbone.drain(grace))
            group.create_task(self._wait_idle(grace))

    async def _wait_idle(self, grace: float) -> None:
        await wait_event(self._idle, self._ctx.clock, grace)

    def _tracked(self, handle: Handle) -> Handle:
        async def tracked(sock: socket.socket) -> None:
            self._active += 1
            self._idle.clear()
            try:
                await handle(sock)
            finally:
                self._active -= 1
                if not self._active:
                    self._idle.set()

        return tracked

    async def _tls(self, local: SocketAddress) -> ssl.SSLContext:
        return await self._ctx.certificates.server_context(self.identity)

    def _close_listeners(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()


class PodProxies:
    """The ZDS handler: starts and stops pod proxies in the process's TaskGroup."""

    def __init__(
        self,
        context: ProxyContext,
        group: asyncio.TaskGroup,
        network: PodNetworkFactory,
        *,
        first_sync: Callable[[], Awaitable[bool]],
    ) -> None:
        self._ctx = context
        self._group = group
        self._network = network
        self._first_sync = first_sync
        self.proxies: dict[str, tuple[PodProxy, asyncio.Task[None]]] = {}
        self.draining = False

    async def start_workload(self, workload: PodWorkload) -> None:
        if self.draining:
            raise Unavailable("ztunnel is shutting down; the next one will take this pod")
        # A proxy without configuration can only hold connections; give discovery a moment so
        # a freshly (re)started ztunnel does not take over a pod before it can serve it.
        if not await self._first_sync():
            log.warning("serving pod %s before the first configuration arrived", workload.uid)
        proxy = PodProxy(self._ctx, workload, self._network(workload))
        self._ctx.certificates.want(f"pod:{workload.uid}", proxy.identity)
        try:
            proxy.open()
        except (MeshError, OSError):
            self._ctx.certificates.release(f"pod:{workload.uid}")
            raise
        task = self._group.create_task(proxy.run(), name=f"pod {workload.uid}")
        self.proxies[workload.uid] = (proxy, task)
        self._count()
        self._ctx.metrics.proxies_started += 1
        log.info(
            "serving pod %s/%s (%s)", workload.info.namespace, workload.info.name, workload.uid
        )

    async def stop_workload(self, uid: str) -> None:
        entry = self.proxies.pop(uid, None)
        self._ctx.certificates.release(f"pod:{uid}")
        if entry is None:
            return
        proxy, task = entry
        task.cancel()  # the pod is gone: its connections go with it, no drain
        await asyncio.wait({task})
        self._count()
        self._ctx.metrics.proxies_stopped += 1
        log.info("stopped serving pod %s/%s (%s)", proxy.info.namespace, proxy.info.name, uid)

    async def drain(self, grace: float) -> None:
        """Shutdown: every pod stops accepting at once, then all drain together."""
        self.draining = True
        proxies = [proxy for proxy, _ in self.proxies.values()]
        async with asyncio.TaskGroup() as group:
            for proxy in proxies:
                group.create_task(proxy.stop_accepting())
        async with asyncio.TaskGroup() as group:
            for proxy in proxies:
                group.create_task(proxy.drain(grace))

    def abort_all(self) -> None:
        """After the drain deadline: cut whatever is still open, everywhere."""
        for _, task in self.proxies.values():
            task.cancel()

    def _count(self) -> None:
        self._ctx.metrics.active_proxies = len(self.proxies)
