"""The node agent (Istio's CNI role) for one node, as a library.

The caller (the local runtime) feeds it facts about pods on its node; the agent decides
enrollment, installs or removes the capture rules inside each pod's network namespace, and
tells ztunnel over ZDS. It writes nothing to the API itself: every call returns what the
caller should record on the pod (`ambient.istio.io/redirection: enabled`, or its removal).

Order matters, as in Istio: on enroll the rules go in before ztunnel hears of the pod (if the
rules fail nothing else happens); on un-enroll the rules come out before ztunnel drops the
pod's listeners, so the application never sees a moment where traffic is redirected to a port
nobody listens on. Applications are never restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ambientmesh.capture.apply import install_capture, remove_capture
from ambientmesh.capture.enrollment import DEFAULT_EXCLUDED_NAMESPACES, EnrollmentFacts, enrollment
from ambientmesh.capture.settings import (
    REDIRECTION_ANNOTATION,
    REDIRECTION_ENABLED,
    CaptureSettings,
)
from ambientmesh.capture.zds_messages import WorkloadInfo
from ambientmesh.capture.zds_server import ZdsPod, ZdsServer
from ambientmesh.errors import MeshError, Unavailable

log = logging.getLogger(__name__)

ZtunnelState = Literal["acked", "queued", "failed", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodFacts:
    """What the agent needs to know about one pod on its node."""

    uid: str
    name: str
    namespace: str
    service_account: str = "default"
    # A name in /run/netns or a path such as /proc/<pid>/ns/net.
    netns: str
    ips: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PodCapture:
    """The result of one reconcile: what holds now and what the caller should record.

    `annotations` maps keys to set (a value) or to remove (None). `ztunnel` says whether ztunnel
    acknowledged the pod ("acked"), will receive it in the snapshot when it connects ("queued"),
    or refused it ("failed": the rules are in; call `pod_changed` again later to retry).
    """

    uid: str
    captured: bool
    reason: str
    annotations: Mapping[str, str | None]
    ztunnel: ZtunnelState = "none"
    error: str = ""


class CaptureInstaller(Protocol):
    async def install(self, netns: str, settings: CaptureSettings) -> None: ...

    async def remove(self, netns: str, settings: CaptureSettings) -> None: ...


class ZtunnelLink(Protocol):
    async def add(self, pod: ZdsPod) -> None: ...

    async def delete(self, uid: str) -> None: ...


class NftablesInstaller:
    """The real installer: `ambientmesh.capture.apply`."""

    async def install(self, netns: str, settings: CaptureSettings) -> None:
        await install_capture(netns, settings)

    async def remove(self, netns: str, settings: CaptureSettings) -> None:
        await remove_capture(netns, settings)


@dataclass(slots=True)
class _Enrolled:
    facts: PodFacts
    ztunnel: ZtunnelState


class NodeAgent:
    """Keeps the enrolled pods of one node captured and known to ztunnel."""

    def __init__(
        self,
        *,
        node: str,
        socket_path: str | None = None,
        ztunnel: ZtunnelLink | None = None,
        installer: CaptureInstaller | None = None,
        settings: CaptureSettings | None = None,
        excluded_namespaces: frozenset[str] = DEFAULT_EXCLUDED_NAMESPACES,
    ) -> None:
        if (socket_path is None) == (ztunnel is None):
            raise ValueError("give exactly one of socket_path (serve ZDS) or ztunnel")
        self.node = node
        self.zds = ZdsServer(socket_path, self.snapshot) if socket_path is not None else None
        self._ztunnel: ZtunnelLink = self.zds if self.zds is not None else ztunnel  # type: ignore[assignment]
        self._installer = installer or NftablesInstaller()
        self._settings = settings or CaptureSettings()
        self._excluded = excluded_namespaces
        self._enrolled: dict[str, _Enrolled] = {}
        self._lock = asyncio.Lock()

    @property
    def enrolled(self) -> Mapping[str, PodFacts]:
        return {uid: entry.facts for uid, entry in self._enrolled.items()}

    def snapshot(self) -> list[ZdsPod]:
        """Every enrolled pod, as ZDS replays them to a (re)connecting ztunnel."""
        return [_zds_pod(entry.facts) for entry in self._enrolled.values()]

    async def serve(self, *, started: asyncio.Event | None = None) -> None:
        """Serve ZDS until cancelled (only when built with `socket_path`)."""
        if self.zds is None:
            raise ValueError("this agent was built with an external ztunnel link; nothing to serve")
        await self.zds.serve(started=started)

    async def pod_changed(self, pod: PodFacts, namespace_labels: Mapping[str, str]) -> PodCapture:
        """Reconcile one pod after it, or its namespace, changed (label added or removed, ...)."""
        decision = enrollment(
            EnrollmentFacts(
                namespace=pod.namespace,
                pod_labels=pod.labels,
                pod_annotations=pod.annotations,
                namespace_labels=namespace_labels,
                host_network=pod.host_network,
            ),
            excluded_namespaces=self._excluded,
        )
        async with self._lock:
            if decision.captured:
                return await self._enroll(pod, decision.reason)
            return await self._unenroll(pod, decision.reason)

    async def pod_deleted(self, uid: str) -> None:
        """The pod is gone with its namespace: forget it and tell ztunnel (no rules to remove)."""
        async with self._lock:
            if self._enrolled.pop(uid, None) is not None:
                await self._tell_delete(uid)

    async def reconcile(
        self, pods: Iterable[tuple[PodFacts, Mapping[str, str]]]
    ) -> list[PodCapture]:
        """Bring the node to exactly `pods` (at start-up): enrolled pods not listed are deleted."""
        listed = list(pods)
        results = [await self.pod_changed(pod, ns_labels) for pod, ns_labels in listed]
        for uid in set(self._enrolled) - {pod.uid for pod, _ in listed}:
            await self.pod_deleted(uid)
        return results

    # ------------------------------------------------------------ internals

    async def _enroll(self, pod: PodFacts, reason: str) -> PodCapture:
        current = self._enrolled.get(pod.uid)
        if current is not None and current.facts.netns == pod.netns and current.ztunnel != "failed":
            current.facts = pod
            return _captured(pod, reason, current.ztunnel)
        # New pod, a recreated sandbox, or a retry: the install is idempotent.
        await self._installer.install(pod.netns, self._settings)
        entry = _Enrolled(facts=pod, ztunnel="queued")
        self._enrolled[pod.uid] = entry
        try:
            await self._ztunnel.add(_zds_pod(pod))
            entry.ztunnel = "acked"
        except Unavailable:
            log.info(
                "capture: pod %s/%s captured; ztunnel will get it on connect",
                pod.namespace,
                pod.name,
            )
        except MeshError as exc:
            # Partial add, as Istio calls it: rules are in, so record the pod as captured (removal
            # must clean them up), and let the caller retry.
            entry.ztunnel = "failed"
            return _captured(pod, reason, "failed", error=exc.message)
        return _captured(pod, reason, entry.ztunnel)

    async def _unenroll(self, pod: PodFacts, reason: str) -> PodCapture:
        current = self._enrolled.pop(pod.uid, None)
        if current is not None:
            await self._installer.remove(current.facts.netns, self._settings)
            await self._tell_delete(pod.uid)
        elif pod.annotations.get(REDIRECTION_ANNOTATION) == REDIRECTION_ENABLED:
            # Captured by an earlier agent whose memory is gone: the annotation is the record
            # that rules may be in place, so take them out (as Istio does).
            await self._installer.remove(pod.netns, self._settings)
        return PodCapture(uid=pod.uid, captured=False, reason=reason, annotations=_removed(pod))

    async def _tell_delete(self, uid: str) -> None:
        try:
            await self._ztunnel.delete(uid)
        except MeshError as exc:
            # A ztunnel that missed this delete drops the pod at its next snapshot.
            log.warning("capture: telling ztunnel to drop pod %s failed: %s", uid, exc.message)


def _zds_pod(pod: PodFacts) -> ZdsPod:
    info = WorkloadInfo(name=pod.name, namespace=pod.namespace, service_account=pod.service_account)
    return ZdsPod(uid=pod.uid, info=info, netns_path=_netns_path(pod.netns))


def _netns_path(netns: str) -> str:
    return netns if netns.startswith("/") else f"/run/netns/{netns}"


def _captured(pod: PodFacts, reason: str, state: ZtunnelState, *, error: str = "") -> PodCapture:
    return PodCapture(
        uid=pod.uid,
        captured=True,
        reason=reason,
        annotations={REDIRECTION_ANNOTATION: REDIRECTION_ENABLED},
        ztunnel=state,
        error=error,
    )


def _removed(pod: PodFacts) -> Mapping[str, str | None]:
    return {REDIRECTION_ANNOTATION: None} if REDIRECTION_ANNOTATION in pod.annotations else {}
