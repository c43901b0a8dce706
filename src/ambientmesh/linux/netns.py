"""Network namespaces: create and delete them like `ip netns`, enter one, make sockets inside one.

Named namespaces live where iproute2 keeps them: an nsfs bind mount at ``/run/netns/<name>``,
so `ip netns exec <name> ...` and `ip -n <name> ...` work on everything created here.

A namespace is a property of a *thread*. `entered` moves the calling thread in and always
moves it back; a socket created inside stays in that namespace for its whole life, which is
how a proxy in one namespace listens in another. `call_in` runs a function on a fresh thread
so an event loop's own thread never changes namespace across an ``await``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ambientmesh.errors import AlreadyExists, InvalidInput, NotFound
from ambientmesh.linux import _libc
from ambientmesh.linux.errors import LinuxError, NetnsEscaped

NETNS_DIR = Path("/run/netns")
_MAX_NAME = 255

T = TypeVar("T")

# A namespace is named (``/run/netns/<name>``), given by path (``/proc/<pid>/ns/net``) or by fd.
Netns = str | int

_dir_lock = threading.Lock()


def validate_name(name: str) -> None:
    """Raise InvalidInput unless `name` can name a file in /run/netns."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InvalidInput(f"invalid network namespace name {name!r}")
    if len(os.fsencode(name)) > _MAX_NAME:
        raise InvalidInput(f"network namespace name is longer than {_MAX_NAME} bytes: {name!r}")


def path_of(name: str) -> Path:
    validate_name(name)
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return path_of(name).exists()


def names() -> list[str]:
    """Every named namespace in /run/netns, sorted."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def create(name: str) -> None:
    """Create the named namespace, with nothing in it but a down loopback (like `ip netns add`)."""
    target = path_of(name)
    _prepare_netns_dir()
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
    except FileExistsError:
        raise AlreadyExists(f"network namespace {name!r} already exists") from None
    os.close(fd)
    try:
        _on_fresh_thread(_bind_new_netns, str(target))
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink()
        raise LinuxError(f"cannot create network namespace {name!r}: {exc.strerror}") from exc


def delete(name: str) -> bool:
    """Remove the named namespace; False if it did not exist. Safe to call twice.

    The kernel frees the namespace once nothing holds it: processes inside it and sockets
    or file descriptors opened in it keep it alive after its name is gone.
    """
    target = path_of(name)
    try:
        _libc.umount2(str(target), _libc.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise LinuxError(f"cannot unmount network namespace {name!r}: {exc}") from exc
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    return True


def open_fd(target: Netns) -> int:
    """A new close-on-exec file descriptor for the namespace; the caller closes it."""
    if isinstance(target, int):
        return os.dup(target)
    file = Path(target) if target.startswith("/") else path_of(target)
    try:
        return os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {target!r} does not exist (no {file})") from None
    except OSError as exc:
        raise LinuxError(f"cannot open network namespace {target!r}: {exc.strerror}") from exc


def identity(target: Netns) -> tuple[int, int]:
    """(device, inode) of the namespace: equal for two handles of one namespace."""
    fd = open_fd(target)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return info.st_dev, info.st_ino


@contextlib.contextmanager
def entered(target: Netns) -> Iterator[None]:
    """Run the body with this thread inside `target`, and always come back.

    Never ``await`` inside: other tasks on the same event loop would run in the namespace.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd = open_fd(target)
        try:
            _libc.setns(fd, _libc.CLONE_NEWNET)
        except OSError as exc:
            raise LinuxError(f"cannot enter network namespace {target!r}: {exc}") from exc
        finally:
            os.close(fd)
        try:
            yield
        finally:
            try:
                _libc.setns(own, _libc.CLONE_NEWNET)
            except OSError as exc:  # pragma: no cover - needs a kernel that refuses root
                raise NetnsEscaped(f"thread stuck in network namespace {target!r}: {exc}") from exc
    finally:
        os.close(own)


def socket_in(
    target: Netns,
    family: int = socket.AF_INET,
    kind: int = socket.SOCK_STREAM,
    proto: int = 0,
) -> socket.socket:
    """A new socket that lives in `target` (bind, listen or connect it from anywhere)."""
    with entered(target):
        return socket.socket(family, kind, proto)


def run_in(target: Netns, function: Callable[..., T], *args: object) -> T:
    """Call `function` on this thread inside `target`; it must not block an event loop."""
    with entered(target):
        return function(*args)


async def call_in(target: Netns | None, function: Callable[..., T], *args: object) -> T:
    """Await `function(*args)` run on a fresh thread inside `target` (None: this namespace).

    A fresh thread per call means no pooled thread is ever left in a foreign namespace.
    If the caller is cancelled the thread still finishes; its result is dropped.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    def main() -> None:
        try:
            value = function(*args) if target is None else run_in(target, function, *args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=main, name="netns-call", daemon=True).start()
    return await future


def pids(name: str) -> list[int]:
    """Processes whose network namespace is the named one (like `ip netns pids`)."""
    wanted = identity(name)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            info = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or a kernel thread
            continue
        if (info.st_dev, info.st_ino) == wanted:
            found.append(int(entry))
    return sorted(found)


def _bind_new_netns(target: str) -> None:
    # Runs on a throwaway thread: unshare moves only this thread, which then ends.
    _libc.unshare(_libc.CLONE_NEWNET)
    _libc.mount("/proc/thread-self/ns/net", target, None, _libc.MS_BIND)


def _prepare_netns_dir() -> None:
    with _dir_lock:
        _share_netns_dir()


@functools.cache
def _share_netns_dir() -> None:
    """Make /run/netns a shared mount, as iproute2 does (once per process; failures retry).

    Shared propagation lets a later `delete` reach the private mount namespaces that
    `ip netns exec` gives processes, so deleted namespaces are really freed.
    """
    NETNS_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        _libc.mount("", str(NETNS_DIR), "none", _libc.MS_SHARED | _libc.MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise LinuxError(f"cannot make {NETNS_DIR} a shared mount: {exc}") from exc
        # Not a mount point yet: bind it onto itself, then share it.
        _libc.mount(str(NETNS_DIR), str(NETNS_DIR), "none", _libc.MS_BIND | _libc.MS_REC)
        _libc.mount("", str(NETNS_DIR), "none", _libc.MS_SHARED | _libc.MS_REC)


def _on_fresh_thread(function: Callable[..., T], *args: object) -> T:
    results: list[T] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            results.append(function(*args))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=main, name="netns-create", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
