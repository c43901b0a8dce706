"""Where a local cluster keeps its files: runtime state under /run, persistent state under /var/lib.

    /run/ambientmesh/<cluster>/            removed by `ambientmesh down`
        api.sock, xds.sock                 the control plane (API server; CA + discovery)
        supervisor.pid, status.json        the runtime daemon and what it last reported
        nodes/<node>/zds.sock              the node agent's ZDS socket for that node's ztunnel
        nodes/<node>/credential/           the node credential ztunnel authenticates with
        logs/supervisor.log                every process logs to a file here...
        logs/control-plane.log
        logs/ztunnel-<node>.log
        logs/pods/<ns>_<pod>_<uid>/<container>.log     ...containers too (`ambientmesh logs`)
    /var/lib/ambientmesh/<cluster>/        kept by `down`, removed by `down --purge`
        store.db, ca/                      the resource store and the certificate authority

Tests and unusual hosts move both roots with AMBIENTMESH_RUN_ROOT and AMBIENTMESH_STATE_ROOT.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime import names

RUN_ROOT = Path("/run/ambientmesh")
STATE_ROOT = Path("/var/lib/ambientmesh")
RUN_ROOT_ENV = "AMBIENTMESH_RUN_ROOT"
STATE_ROOT_ENV = "AMBIENTMESH_STATE_ROOT"
# sockaddr_un holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterPaths:
    """Every file location of one cluster."""

    cluster: str
    run_dir: Path
    state_dir: Path

    @classmethod
    def for_cluster(cls, cluster: str, env: Mapping[str, str] | None = None) -> ClusterPaths:
        """The layout of `cluster`, with the roots taken from the environment if set there."""
        names.validate_cluster_name(cluster)
        env = os.environ if env is None else env
        run_root = Path(env.get(RUN_ROOT_ENV) or RUN_ROOT)
        state_root = Path(env.get(STATE_ROOT_ENV) or STATE_ROOT)
        for what, root in (("run", run_root), ("state", state_root)):
            if not root.is_absolute():
                raise InvalidInput(f"the {what} root {str(root)!r} must be an absolute path")
        return cls(cluster=cluster, run_dir=run_root / cluster, state_dir=state_root / cluster)

    def environment(self) -> tuple[tuple[str, str], ...]:
        """What a process needs in its environment to find this cluster's files again."""
        return (
            ("AMBIENTMESH_CLUSTER", self.cluster),
            (RUN_ROOT_ENV, str(self.run_dir.parent)),
            (STATE_ROOT_ENV, str(self.state_dir.parent)),
        )

    @property
    def api_socket(self) -> Path:
        return self.run_dir / "api.sock"

    @property
    def xds_socket(self) -> Path:
        return self.run_dir / "xds.sock"

    @property
    def supervisor_pid(self) -> Path:
        return self.run_dir / "supervisor.pid"

    @property
    def status_file(self) -> Path:
        return self.run_dir / "status.json"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def supervisor_log(self) -> Path:
        return self.logs_dir / "supervisor.log"

    @property
    def control_plane_log(self) -> Path:
        return self.logs_dir / "control-plane.log"

    def ztunnel_log(self, node: str) -> Path:
        return self.logs_dir / f"ztunnel-{node}.log"

    def node_dir(self, node: str) -> Path:
        names.validate_label("node", node)
        return self.run_dir / "nodes" / node

    def zds_socket(self, node: str) -> Path:
        return self.node_dir(node) / "zds.sock"

    def credential_dir(self, node: str) -> Path:
        return self.node_dir(node) / "credential"

    def pod_log_dir(self, namespace: str, pod: str, uid: str) -> Path:
        """Kubernetes' /var/log/pods layout: the uid keeps a re-created pod's logs apart."""
        return self.logs_dir / "pods" / f"{namespace}_{pod}_{uid}"

    def container_log(self, namespace: str, pod: str, uid: str, container: str) -> Path:
        return self.pod_log_dir(namespace, pod, uid) / f"{container}.log"

    def check_socket_paths(self, nodes: list[str]) -> None:
        """Refuse a layout whose unix socket paths would not fit in a sockaddr."""
        sockets = [self.api_socket, self.xds_socket, *(self.zds_socket(node) for node in nodes)]
        for path in sockets:
            if len(os.fsencode(path)) > MAX_SOCKET_PATH:
                raise InvalidInput(
                    f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes; "
                    f"choose a shorter {RUN_ROOT_ENV} or cluster name"
                )
