"""Runs a readiness probe against a pod, from inside the pod's network namespace.

Probe sockets are created in the pod's namespace and connect to the pod's own address, so a
probe reaches the app the way a local client would; exec probes run like the container does
(`ip netns exec`, with its environment). Scheduling uses the injected clock; each probe's
`timeoutSeconds` is a real deadline on real I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from ambientmesh.clock import Clock, SystemClock
from ambientmesh.linux import netns
from ambientmesh.runtime.probes import Exec, HttpGet, Probe, ReadinessTracker, TcpSocket

USER_AGENT = "kube-probe/ambientmesh"
_STATUS_LINE_LIMIT = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTarget:
    """The pod a probe runs against."""

    netns: str
    ip: IPv4Address
    env: Mapping[str, str] | None = None  # for exec probes: the container's environment


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    success: bool
    detail: str


async def check(probe: Probe, target: ProbeTarget) -> ProbeResult:
    """Run the probe's action once, within its timeout."""
    action = probe.action
    try:
        async with asyncio.timeout(probe.timeout):
            if isinstance(action, Exec):
                return await _exec(action, target)
            host = action.host or target.ip
            if isinstance(action, TcpSocket):
                sock = await _connect(target.netns, host, action.port)
                sock.close()
                return ProbeResult(success=True, detail=f"connected to {host}:{action.port}")
            return await _http_get(action, target.netns, host)
    except TimeoutError:
        return ProbeResult(success=False, detail=f"timed out after {probe.timeout:g} s")
    except OSError as exc:
        return ProbeResult(success=False, detail=str(exc))


class ReadinessProber:
    """Probes every `period` after `initial_delay`; `ready` follows the thresholds."""

    def __init__(
        self,
        probe: Probe,
        target: ProbeTarget,
        *,
        clock: Clock | None = None,
        on_change: Callable[[bool, ProbeResult], None] | None = None,
    ) -> None:
        self.probe = probe
        self.target = target
        self.clock = clock or SystemClock()
        self._tracker = ReadinessTracker(probe)
        self._on_change = on_change
        self._changed = asyncio.Event()
        self.last_result: ProbeResult | None = None

    @property
    def ready(self) -> bool:
        return self._tracker.ready

    async def run(self) -> None:
        """Probe until cancelled."""
        await self.clock.sleep(self.probe.initial_delay)
        while True:
            result = await check(self.probe, self.target)
            self.last_result = result
            if self._tracker.observe(result.success):
                if self._on_change is not None:
                    self._on_change(self._tracker.ready, result)
                self._changed.set()
                self._changed = asyncio.Event()
            await self.clock.sleep(self.probe.period)

    async def wait_until(self, ready: bool) -> None:
        """Return once readiness equals `ready` (put a deadline around this)."""
        while self._tracker.ready != ready:
            await self._changed.wait()


async def _connect(netns_name: str, host: IPv4Address, port: int) -> socket.socket:
    sock = netns.socket_in(netns_name, socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (str(host), port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _http_get(action: HttpGet, netns_name: str, host: IPv4Address) -> ProbeResult:
    sock = await _connect(netns_name, host, action.port)
    context = None
    if action.scheme == "HTTPS":
        # Kubernetes does not verify a probe's certificate: it asks "is it up", not "is it you".
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(
        sock=sock,
        ssl=context,
        server_hostname=str(host) if context else None,
        limit=_STATUS_LINE_LIMIT,
    )
    try:
        writer.write(_request(action, host))
        await writer.drain()
        status_line = await reader.readline()
    except ValueError:  # a status line longer than the limit
        return ProbeResult(success=False, detail="malformed HTTP response")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return ProbeResult(success=False, detail=f"malformed HTTP status line {status_line[:80]!r}")
    code = int(parts[1])
    # Kubernetes: any status from 200 up to (not including) 400 is a success.
    return ProbeResult(success=200 <= code < 400, detail=f"HTTP {code}")


def _request(action: HttpGet, host: IPv4Address) -> bytes:
    headers = {"host": ("Host", f"{host}:{action.port}"), "user-agent": ("User-Agent", USER_AGENT)}
    headers["accept"] = ("Accept", "*/*")
    headers["connection"] = ("Connection", "close")
    for name, value in action.headers:  # the probe's headers win, as in Kubernetes
        headers[name.lower()] = (name, value)
    lines = [f"GET {action.path} HTTP/1.1", *(f"{n}: {v}" for n, v in headers.values()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _exec(action: Exec, target: ProbeTarget) -> ProbeResult:
    ip_tool = shutil.which("ip") or "ip"
    process = await asyncio.create_subprocess_exec(
        ip_tool, "netns", "exec", target.netns, *action.command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(target.env) if target.env is not None else None,
        start_new_session=True,
    )  # fmt: skip
    try:
        code = await process.wait()
    except BaseException:  # timed out or cancelled: the probe process must not linger
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(process.wait())
        raise
    return ProbeResult(success=code == 0, detail=f"exit code {code}")
