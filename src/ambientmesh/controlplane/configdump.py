"""What a ztunnel is sent, as JSON in the shape of ztunnel's own config dump (istioctl reads it).

Pure: protobuf messages in, plain dicts out. Workloads carry ``workloadIps``, ``protocol``,
``waypoint.destination``...; services carry ``vips``, ``ports`` and the ``endpoints`` derived
from workloads' service maps; policies carry their rules as clauses of matches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format

from ambientmesh.proto import authorization_pb2 as apb
from ambientmesh.proto import workload_pb2 as wpb


def _ip(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


def waypoint(address: wpb.GatewayAddress) -> dict[str, str]:
    if address.HasField("hostname"):
        target = f"{address.hostname.namespace}/{address.hostname.hostname}"
    else:
        target = _ip(address.address.address)
    return {"destination": f"{target}:{address.hbone_mtls_port}"}


def workload_json(workload: wpb.Workload) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uid": workload.uid,
        "workloadIps": [_ip(ip) for ip in workload.addresses],
        "protocol": wpb.TunnelProtocol.Name(workload.tunnel_protocol),
        "name": workload.name,
        "namespace": workload.namespace,
        "serviceAccount": workload.service_account or "default",
        "workloadName": workload.workload_name,
        "workloadType": wpb.WorkloadType.Name(workload.workload_type).lower(),
        "canonicalName": workload.canonical_name,
        "canonicalRevision": workload.canonical_revision,
        "clusterId": workload.cluster_id,
        "trustDomain": workload.trust_domain or "cluster.local",
        "node": workload.node,
        "status": wpb.WorkloadStatus.Name(workload.status),
        "hostname": workload.hostname,
        "authorizationPolicies": list(workload.authorization_policies),
        "services": {
            name: {str(p.service_port): p.target_port for p in ports.ports}
            for name, ports in sorted(workload.services.items())
        },
    }
    if workload.HasField("waypoint"):
        out["waypoint"] = waypoint(workload.waypoint)
    if workload.native_tunnel:
        out["nativeTunnel"] = True
    if workload.HasField("locality"):
        out["locality"] = json_format.MessageToDict(workload.locality)
    return out


def service_json(service: wpb.Service, workloads: Iterable[wpb.Workload]) -> dict[str, Any]:
    key = f"{service.namespace}/{service.hostname}"
    endpoints = {}
    for workload in workloads:
        ports = workload.services.get(key)
        if ports is not None:
            endpoints[workload.uid] = {
                "workloadUid": workload.uid,
                "service": key,
                "port": {str(p.service_port): p.target_port for p in ports.ports},
                "status": wpb.WorkloadStatus.Name(workload.status),
            }
    out: dict[str, Any] = {
        "name": service.name,
        "namespace": service.namespace,
        "hostname": service.hostname,
        "vips": [f"{a.network}/{_ip(a.address)}" for a in service.addresses],
        "ports": {str(p.service_port): p.target_port for p in service.ports},
        "endpoints": endpoints,
        "ipFamilies": wpb.IPFamilies.Name(service.ip_families),
    }
    if service.HasField("waypoint"):
        out["waypoint"] = waypoint(service.waypoint)
    if service.HasField("load_balancing"):
        out["loadBalancer"] = json_format.MessageToDict(service.load_balancing)
    return out


def policy_json(policy: apb.Authorization) -> dict[str, Any]:
    return {
        "name": policy.name,
        "namespace": policy.namespace,
        "scope": apb.Scope.Name(policy.scope),
        "action": apb.Action.Name(policy.action),
        "dryRun": policy.dry_run,
        "rules": [
            [
                [json_format.MessageToDict(match) for match in clause.matches]
                for clause in rule.clauses
            ]
            for rule in policy.rules
        ],
    }


def dump(
    addresses: Iterable[wpb.Address], authorizations: Iterable[apb.Authorization]
) -> dict[str, Any]:
    """The whole configuration, sorted for stable output."""
    workloads = [a.workload for a in addresses if a.WhichOneof("type") == "workload"]
    services = [a.service for a in addresses if a.WhichOneof("type") == "service"]
    workloads.sort(key=lambda w: (w.namespace, w.name, w.uid))
    services.sort(key=lambda s: (s.namespace, s.hostname))
    policies = sorted(authorizations, key=lambda p: (p.namespace, p.name))
    return {
        "workloads": [workload_json(w) for w in workloads],
        "services": [service_json(s, workloads) for s in services],
        "policies": [policy_json(p) for p in policies],
    }
