"""Istio's ambient semantics as a pure, incremental computation.

Kubernetes and Istio objects go in (``AmbientIndex.apply``); the Workloads, Services and
Authorizations ztunnel consumes come out, only those that changed, plus the status facts the
controllers write back. No I/O, no clock.
"""
