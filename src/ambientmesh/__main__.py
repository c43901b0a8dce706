"""Entry point for ``python -m ambientmesh``."""

import sys

from ambientmesh.cli.main import main

sys.exit(main())
