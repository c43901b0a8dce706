"""An owned file descriptor of a network namespace, checked to be one; what ZDS hands to ztunnel."""

from __future__ import annotations

import errno
import fcntl
import os

from ambientmesh.capture.errors import NotANetworkNamespace

# ioctl(2) on an nsfs file: NS_GET_NSTYPE = _IO(0xb7, 0x3) answers the namespace's CLONE_* type.
_NS_GET_NSTYPE = 0xB703
_CLONE_NEWNET = 0x40000000


def check_netns_fd(fd: int) -> None:
    """Raise NotANetworkNamespace unless `fd` refers to a network namespace."""
    try:
        kind = fcntl.ioctl(fd, _NS_GET_NSTYPE)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL, errno.EBADF):
            raise NotANetworkNamespace(f"fd {fd} is not a namespace file ({exc.strerror})") from exc
        raise NotANetworkNamespace(f"cannot inspect fd {fd}: {exc.strerror}") from exc
    if kind != _CLONE_NEWNET:
        raise NotANetworkNamespace(
            f"fd {fd} is a namespace of type {kind:#x}, not a network namespace"
        )


class NetnsFd:
    """A network namespace held open by file descriptor; `close()` releases it (idempotent).

    `identity` is (st_dev, st_ino) of the nsfs file: equal identities mean the same namespace,
    which is how a re-sent pod is told apart from a pod whose sandbox was recreated.
    """

    __slots__ = ("_fd", "identity")

    def __init__(self, fd: int) -> None:
        check_netns_fd(fd)
        st = os.fstat(fd)
        self._fd = fd
        self.identity: tuple[int, int] = (st.st_dev, st.st_ino)

    @classmethod
    def open(cls, path: str) -> NetnsFd:
        """Open a namespace by path (`/run/netns/NAME`, `/proc/PID/ns/net`)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NotANetworkNamespace(
                f"cannot open network namespace {path}: {exc.strerror}"
            ) from exc
        try:
            return cls(fd)
        except BaseException:
            os.close(fd)
            raise

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError("network namespace fd already closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> NetnsFd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"NetnsFd({state}, inode={self.identity[1]})"
