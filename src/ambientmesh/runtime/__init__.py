"""The local cluster runtime: one Linux host as a cluster of network namespaces and processes."""
