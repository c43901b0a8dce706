"""The control plane: resource-derived configuration, certificate authority service, discovery."""
