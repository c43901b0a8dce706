"""Workload identity: SPIFFE IDs, certificates, the CA, mutual TLS, certificate rotation."""
