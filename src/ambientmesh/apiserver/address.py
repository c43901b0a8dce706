"""Where the API server is: a unix socket, or an https URL with a client certificate."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambientmesh.errors import InvalidInput

RUN_DIR = Path("/run/ambientmesh")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerAddress:
    """Where the API server is: a unix socket, or an https URL with client credentials."""

    socket: Path | None = None
    url: str | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    ca: Path | None = None

    def describe(self) -> str:
        return str(self.socket) if self.socket is not None else str(self.url)

    @classmethod
    def for_cluster(
        cls, name: str = "default", env: Mapping[str, str] | None = None
    ) -> ServerAddress:
        """``/run/ambientmesh/<name>/api.sock`` (the root moved by ``AMBIENTMESH_RUN_ROOT``,
        as ``ambientmesh up`` allows) unless ``AMBIENTMESH_SERVER`` names another
        socket (a path or ``unix://`` URL) or an ``https://`` URL (with
        ``AMBIENTMESH_CLIENT_CERT``/``_KEY``/``_CA`` for mTLS)."""
        env = os.environ if env is None else env
        server = env.get("AMBIENTMESH_SERVER", "").strip()
        if not server:
            run_root = Path(env.get("AMBIENTMESH_RUN_ROOT") or RUN_DIR)
            return cls(socket=run_root / name / "api.sock")
        if server.startswith("unix://"):
            return cls(socket=Path(server.removeprefix("unix://")))
        if server.startswith("/"):
            return cls(socket=Path(server))
        if server.startswith("https://"):
            return cls(
                url=server.rstrip("/"),
                client_cert=_path(env.get("AMBIENTMESH_CLIENT_CERT")),
                client_key=_path(env.get("AMBIENTMESH_CLIENT_KEY")),
                ca=_path(env.get("AMBIENTMESH_CLIENT_CA")),
            )
        raise InvalidInput(
            f"AMBIENTMESH_SERVER={server!r} is neither a socket path nor an https:// URL "
            "(plain http is not served)"
        )

    def tls_context(self) -> ssl.SSLContext:
        if self.client_cert is None or self.client_key is None:
            raise InvalidInput(
                f"the API server at {self.url} requires a client certificate; set "
                "AMBIENTMESH_CLIENT_CERT and AMBIENTMESH_CLIENT_KEY (and AMBIENTMESH_CLIENT_CA)"
            )
        try:
            context = ssl.create_default_context(cafile=self.ca)
            context.load_cert_chain(self.client_cert, self.client_key)
        except (OSError, ssl.SSLError) as error:
            raise InvalidInput(f"cannot load the client certificate or CA: {error}") from error
        return context


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
