"""Delta aggregated discovery (Envoy's incremental xDS): a generic server and client over gRPC.

Nothing here knows what a workload is: the server serves named, versioned protobuf resources
grouped by type URL and the client hands each response to a typed handler. The control plane
feeds the server; ztunnel runs the client.
"""
