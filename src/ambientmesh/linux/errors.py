"""Finer kinds of MeshError raised when the kernel or a system tool refuses a request."""

from __future__ import annotations

from ambientmesh.errors import MeshError


class LinuxError(MeshError):
    """The kernel, or a tool that talks to it (ip, nft), refused or failed a request."""

    status = 500
    reason = "LinuxError"


class CommandFailed(LinuxError):
    """A system command (ip, nft, ...) exited non-zero; the message carries its stderr."""

    def __init__(
        self, message: str, *, argv: tuple[str, ...], returncode: int, stderr: str
    ) -> None:
        super().__init__(message)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class NetnsEscaped(LinuxError):
    """A thread could not return to its own network namespace; it must not be used again."""
