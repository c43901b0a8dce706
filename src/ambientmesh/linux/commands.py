"""Run a short system command (ip, nft) to completion with a time limit, optionally in a netns."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from ambientmesh.linux import netns
from ambientmesh.linux.errors import CommandFailed, LinuxError

DEFAULT_TIMEOUT = 10.0


async def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    netns_name: str | None = None,
    time_limit: float = DEFAULT_TIMEOUT,
) -> str:
    """Run `argv` to completion and return its stdout; raise CommandFailed on a non-zero exit.

    With `netns_name` the command starts inside that namespace (its parent thread enters it
    first), which is lighter than `ip netns exec` when no /etc/netns files are needed.
    """
    command = tuple(argv)
    result = await netns.call_in(netns_name, _run_blocking, command, stdin, time_limit)
    if result.returncode != 0:
        where = f" in network namespace {netns_name!r}" if netns_name else ""
        stderr = result.stderr.strip()
        raise CommandFailed(
            f"`{shlex.join(command)}`{where} failed with exit code {result.returncode}: {stderr}",
            argv=command,
            returncode=result.returncode,
            stderr=stderr,
        )
    return result.stdout


def _run_blocking(
    argv: tuple[str, ...], stdin: str | None, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise LinuxError(f"the `{argv[0]}` command is not installed") from None
    except subprocess.TimeoutExpired:
        raise LinuxError(f"`{shlex.join(argv)}` did not finish within {timeout:g} s") from None
