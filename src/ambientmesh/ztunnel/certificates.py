"""Certificates for the identities of the pods on this node, and the TLS contexts built on them.

Every pod identity the node needs is fetched ahead of use (prefetch when a pod is scheduled on
the node, as discovery says, or handed over by the node agent) and renewed at half-life by the
``CertificateManager``. In-pod HBONE listeners present a ``RotatingServerContext`` per identity:
a rotation swaps the certificate for the handshakes to come, and connections already open keep
the session they negotiated, so rotation never drops a connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from ambientmesh.identity.credential import Credential
from ambientmesh.identity.manager import CertificateManager, CertificateState
from ambientmesh.identity.spiffe import Identity
from ambientmesh.identity.tls import RotatingServerContext


class WorkloadCertificates:
    """Which identities are wanted (and by whom), their credentials and server contexts."""

    def __init__(self, manager: CertificateManager, roots_pem: bytes, *, wait: float) -> None:
        self.manager = manager
        self.roots_pem = roots_pem
        self._wait = wait
        self._owners: dict[str, Identity] = {}  # owner key -> identity it needs
        self._counts: dict[Identity, int] = {}
        self._contexts: dict[Identity, RotatingServerContext] = {}
        manager.subscribe(self._rotated)

    # ------------------------------------------------------------------ wanting

    def want(self, owner: str, identity: Identity) -> None:
        """``owner`` (a pod, by some key) needs ``identity``: fetch it now if nobody did."""
        previous = self._owners.get(owner)
        if previous == identity:
            return
        if previous is not None:
            self.release(owner)
        self._owners[owner] = identity
        self._counts[identity] = self._counts.get(identity, 0) + 1
        if self._counts[identity] == 1:
            self.manager.prefetch(identity)

    def release(self, owner: str) -> None:
        """``owner`` no longer needs its identity; the last owner leaving forgets it."""
        identity = self._owners.pop(owner, None)
        if identity is None:
            return
        self._counts[identity] -= 1
        if not self._counts[identity]:
            del self._counts[identity]
            self._contexts.pop(identity, None)
            self.manager.forget(identity)

    def owned_by(self, prefix: str) -> list[str]:
        return [owner for owner in self._owners if owner.startswith(prefix)]

    @property
    def identities(self) -> Iterable[Identity]:
        return self._counts.keys()

    # ------------------------------------------------------------------ using

    async def credential(self, identity: Identity) -> Credential:
        """The identity's credential (waits for a first fetch); Unavailable if none came."""
        return await self.manager.get(identity, max_wait=self._wait)

    async def server_context(self, identity: Identity) -> ssl.SSLContext:
        """The listening context presenting ``identity``, kept current across rotations."""
        rotating = self._contexts.get(identity)
        if rotating is None:
            credential = await self.credential(identity)
            rotating = self._contexts.get(identity)  # someone may have made it meanwhile
            if rotating is None:
                rotating = RotatingServerContext(credential, self.roots_pem)
                if identity in self._counts:  # cache only what is still wanted
                    self._contexts[identity] = rotating
        return rotating.context

    def states(self) -> list[CertificateState]:
        return self.manager.states()

    def _rotated(self, identity: Identity, credential: Credential) -> None:
        rotating = self._contexts.get(identity)
        if rotating is not None:
            rotating.update(credential, self.roots_pem)
