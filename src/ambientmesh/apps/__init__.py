"""Small programs bundled for trying the mesh out, run as `python -m ambientmesh.apps.<name>`."""
