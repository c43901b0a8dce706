"""Detached processes: start one in its own session, find it again by pid file, stop it.

A pid alone is not proof: pids are reused. Before signalling, the process's command line must
still name what we started (`cmdline_has`), so a stale pid file never kills a stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from ambientmesh.errors import MeshError


class SpawnFailed(MeshError):
    reason = "SpawnFailed"


def spawn(argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> int:
    """Start `argv` in a new session, stdin from /dev/null, stdout and stderr to `log_path`.

    It is not a `subprocess.Popen`: the daemon outlives us, and nothing should wait for it.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        return os.posix_spawn(
            argv[0], list(argv), dict(os.environ if env is None else env),
            file_actions=actions, setsid=True,
        )  # fmt: skip
    except OSError as error:
        raise SpawnFailed(f"cannot start {argv[0]}: {error}") from error


def write_pid(path: Path, pid: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(f"{pid}\n")
    os.replace(temporary, path)


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cmdline_has(pid: int, *words: str) -> bool:
    """Whether the process's argv contains every one of `words` (as whole arguments)."""
    argv = cmdline(pid)
    return bool(argv) and all(word in argv for word in words)


def alive(pid: int) -> bool:
    """Running (a zombie is not); reaps it if it is our own child."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state is the first field after the parenthesised command name.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def stop(pid: int, *, deadline: float, poll: float = 0.05) -> bool:
    """SIGTERM, then SIGKILL if it is still there after `deadline` seconds; True if it exited
    before the SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_gone(pid, deadline=deadline, poll=poll):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, deadline=5.0, poll=poll)
    return False


def wait_gone(pid: int, *, deadline: float, poll: float = 0.05) -> bool:
    # A CLI waiting for a process it cannot be notified about: polling is the only way.
    end = time.monotonic() + deadline
    while alive(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(poll)
    return True
