"""Mesh-wide settings the computation needs (istiod's MeshConfig and feature flags)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshConfig:
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    # istiod's default cluster ID; it prefixes every pod's workload uid.
    cluster_id: str = "Kubernetes"
    # Policies here without a selector apply mesh-wide (Istio's root namespace).
    root_namespace: str = "istio-system"
    # AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY: off by default, as in istiod.
    dry_run_policies: bool = False
    hbone_port: int = 15008

    def service_hostname(self, namespace: str, name: str) -> str:
        return f"{name}.{namespace}.svc.{self.cluster_domain}"
