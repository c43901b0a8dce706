"""The HTTP API over the resource store (unix socket, optional mTLS TCP) and its clients."""
