"""One valid object of every kind the API serves."""

from __future__ import annotations

import copy
from typing import Any

_CONTAINER = {"name": "app", "image": "example/app:1"}
_PARENT = {"group": "", "kind": "Service", "name": "web"}

SAMPLES: dict[str, dict[str, Any]] = {
    "Namespace": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
    "Node": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}},
    "Pod": {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"containers": [_CONTAINER]},
    },
    "Service": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
    },
    "ServiceAccount": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}},
    "Deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [_CONTAINER]},
            },
        },
    },
    "Job": {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [_CONTAINER]}}},
    },
    "GatewayClass": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "istio-waypoint"},
        "spec": {"controllerName": "istio.io/waypoint-controller"},
    },
    "Gateway": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "waypoint"},
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    },
    "HTTPRoute": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {
            "parentRefs": [_PARENT],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    },
    "GRPCRoute": {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GRPCRoute",
        "metadata": {"name": "grpc"},
        "spec": {
            "parentRefs": [_PARENT],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    },
    "TCPRoute": {
        "apiVersion": "gateway.networking.k8s.io/v1alpha2",
        "kind": "TCPRoute",
        "metadata": {"name": "tcp"},
        "spec": {
            "parentRefs": [{"name": "waypoint"}],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    },
    "AuthorizationPolicy": {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "allow-web"},
        "spec": {
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/default/sa/web"]}}]}],
        },
    },
    "PeerAuthentication": {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "strict"},
        "spec": {"mtls": {"mode": "STRICT"}},
    },
    "RequestAuthentication": {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": {"name": "jwt"},
        "spec": {
            "jwtRules": [
                {"issuer": "https://issuer.example", "jwksUri": "https://issuer.example/jwks"}
            ]
        },
    },
    "VirtualService": {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    },
    "DestinationRule": {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "web"},
        "spec": {"host": "web", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    },
    "ServiceEntry": {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "external"},
        "spec": {
            "hosts": ["example.com"],
            "ports": [{"number": 443, "name": "https", "protocol": "TLS"}],
            "resolution": "DNS",
            "location": "MESH_EXTERNAL",
        },
    },
    "Telemetry": {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "logs"},
        "spec": {"accessLogging": [{"providers": [{"name": "envoy"}]}]},
    },
}


def sample(kind: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[kind])
