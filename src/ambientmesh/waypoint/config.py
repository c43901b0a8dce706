"""The settings of one waypoint pod, from flags and the pod's environment, then frozen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ambientmesh.errors import IdentityError, InvalidInput
from ambientmesh.hbone.config import HboneConfig
from ambientmesh.identity.spiffe import Identity, check_trust_domain

HBONE_PORT = 15008
READINESS_PORT = 15021


@dataclass(frozen=True, slots=True, kw_only=True)
class WaypointConfig:
    """Who this waypoint is (its Gateway and pod) and how it reaches the control plane.

    The waypoint authenticates to the control plane with the credential of the node it runs
    on, as ztunnel does, and asks the CA for its own identity by impersonation: the CA signs it
    because a pod with that service account (this one) is scheduled on that node.
    """

    gateway_namespace: str
    gateway_name: str
    pod_name: str
    pod_namespace: str
    node: str
    service_account: str
    xds_address: str
    ca_address: str
    credential_dir: Path
    trust_domain: str = "cluster.local"
    cluster_id: str = "Kubernetes"
    hbone_address: tuple[str, int] = ("0.0.0.0", HBONE_PORT)
    readiness_address: tuple[str, int] = ("0.0.0.0", READINESS_PORT)
    workload_wait: float = 5.0
    certificate_wait: float = 10.0
    connect_timeout: float = 10.0
    drain_deadline: float = 5.0
    secret_ttl: timedelta = timedelta(hours=24)
    hbone: HboneConfig = field(default_factory=HboneConfig)

    def __post_init__(self) -> None:
        for name in ("gateway_namespace", "gateway_name", "pod_name", "pod_namespace", "node"):
            if not getattr(self, name):
                raise InvalidInput(f"waypoint setting {name} is empty")
        try:
            check_trust_domain(self.trust_domain)
        except IdentityError as error:
            raise InvalidInput(f"waypoint setting trust_domain: {error.message}") from None
        self.identity  # noqa: B018 - validates the service account and namespace now

    @property
    def identity(self) -> Identity:
        return Identity(
            trust_domain=self.trust_domain,
            namespace=self.pod_namespace,
            service_account=self.service_account,
        )


def parse_gateway(text: str) -> tuple[str, str]:
    """``<namespace>/<name>`` of the Gateway this waypoint implements."""
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise InvalidInput(f"--gateway {text!r}: expected <namespace>/<name>")
    return namespace, name
