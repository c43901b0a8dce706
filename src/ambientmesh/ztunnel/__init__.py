"""ztunnel, the node's Layer-4 proxy: pure decision cores (state, plans, policy, telemetry)."""
