"""The ``ambientmesh`` command line, in the spirit of kubectl and istioctl."""
