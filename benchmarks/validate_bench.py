"""Validation throughput: documents per second for Pods, Services and AuthorizationPolicies.

Run: .venv/bin/python benchmarks/validate_bench.py [--pods 10000] [--services 1000]

Each object is distinct (names, labels and ports vary) so no cache can help; schema loading
happens once, before timing, as it does in a long-running process.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ambientmesh.resources.validation import validate


def make_pod(number: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{number}",
            "namespace": f"team-{number % 20}",
            "labels": {"app": "web", "app.kubernetes.io/instance": f"web-{number % 50}"},
            "annotations": {"example.com/build": str(number)},
        },
        "spec": {
            "serviceAccountName": "web",
            "containers": [
                {
                    "name": "app",
                    "image": "ambientmesh/echo:1",
                    "args": ["--port", "8080"],
                    "env": [{"name": "REPLICA", "value": str(number)}],
                    "ports": [{"name": "http", "containerPort": 8080 + number % 100}],
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ],
        },
    }


def make_service(number: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{number}", "namespace": f"team-{number % 20}"},
        "spec": {
            "selector": {"app": f"svc-{number}"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080 + number % 100},
                {"name": "grpc", "port": 9090, "appProtocol": "grpc"},
            ],
        },
    }


def make_policy(number: int) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"allow-{number}", "namespace": f"team-{number % 20}"},
        "spec": {
            "selector": {"matchLabels": {"app": f"svc-{number}"}},
            "rules": [
                {
                    "from": [
                        {"source": {"principals": [f"cluster.local/ns/team-{number % 20}/sa/web"]}}
                    ],
                    "to": [
                        {
                            "operation": {
                                "ports": ["8080"],
                                "methods": ["GET"],
                                "paths": ["/api/{*}"],
                            }
                        }
                    ],
                }
            ],
        },
    }


def measure(name: str, make: Callable[[int], dict[str, Any]], count: int) -> None:
    objects = [make(number) for number in range(count)]
    validate(make(0))  # warm up: load schemas and build validators outside the timing
    started = time.perf_counter()
    invalid = sum(1 for obj in objects if validate(obj))
    elapsed = time.perf_counter() - started
    assert invalid == 0, f"{invalid} generated {name} objects were invalid"
    print(
        f"{name:<22} {count:>6} documents  {elapsed:7.3f} s  "
        f"{count / elapsed:9.0f} documents/s  {elapsed / count * 1e6:7.1f} us/document"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=1_000)
    parser.add_argument("--policies", type=int, default=1_000)
    args = parser.parse_args()
    measure("Pod", make_pod, args.pods)
    measure("Service", make_service, args.services)
    measure("AuthorizationPolicy", make_policy, args.policies)


if __name__ == "__main__":
    main()
