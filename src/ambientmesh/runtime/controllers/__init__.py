"""Workload controllers of the local runtime: pure reconcile decisions and their async loops."""
