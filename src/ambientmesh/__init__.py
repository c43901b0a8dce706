"""ambientmesh: a sidecarless service mesh, compatible with Istio's ambient mode."""

__version__ = "0.1.0"
