"""Durability: a write the API server acknowledged survives ``kill -9`` of its process."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.client import ApiClient
from ambientmesh.errors import MeshError
from ambientmesh.resources import kinds

ACCOUNT = kinds.lookup("v1", "ServiceAccount")
WRITERS = 4
ROUNDS = 3


@contextmanager
def server_process(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m ambientmesh.apiserver`` until it reports ready; kill it at the end."""
    ready = directory / "ready.json"
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ambientmesh.apiserver",
            "--state-dir",
            str(directory / "state"),
            "--socket",
            str(directory / "api.sock"),
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                _, stderr = process.communicate(timeout=5)
                raise RuntimeError(f"the API server did not start: {stderr.decode()[-2000:]}")
            time.sleep(0.02)  # polling a file another process writes; no event to wait on
        assert json.loads(ready.read_text())["pid"] == process.pid
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def hammer(address: ServerAddress, writer: int, acked: list[str], stop: threading.Event) -> None:
    """Create objects until the server dies; remember each one it acknowledged."""
    with ApiClient(address, timeout=5.0) as client:
        for sequence in range(1_000_000):
            if stop.is_set():
                return
            name = f"w{writer}-{sequence}-{os.urandom(3).hex()}"
            obj = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
            try:
                client.create(obj)
            except MeshError:
                return  # the server is gone; this write was never acknowledged
            acked.append(name)


def test_acknowledged_writes_survive_kill_9(short_dir: Path) -> None:
    rng = random.Random()
    address = ServerAddress(socket=short_dir / "api.sock")
    acknowledged: list[str] = []
    for _ in range(ROUNDS):
        acked: list[str] = []
        stop = threading.Event()
        target = rng.randrange(50, 400)
        with server_process(short_dir) as process:
            writers = [
                threading.Thread(target=hammer, args=(address, n, acked, stop))
                for n in range(WRITERS)
            ]
            for thread in writers:
                thread.start()
            deadline = time.monotonic() + 30
            while len(acked) < target and time.monotonic() < deadline:
                time.sleep(0.001)  # the kill moment is the thing under test
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            stop.set()
            for thread in writers:
                thread.join(15)
        assert len(acked) >= target, "the writers stalled before the kill"
        acknowledged.extend(acked)
        with server_process(short_dir) as process, ApiClient(address) as client:
            stored = {obj["metadata"]["name"] for obj in client.list(ACCOUNT).items}
            missing = [name for name in acknowledged if name not in stored]
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0, "SIGTERM should exit cleanly"
