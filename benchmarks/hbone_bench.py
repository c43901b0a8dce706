"""HBONE tunnels against direct TCP and stunnel4, one and two proxy hops, on loopback.

    .venv/bin/python benchmarks/hbone_bench.py [--rounds 3] [--idle 1000,10000]

Prints a markdown table. Hops are proxy processes on the path: one hop is a single process
that both originates and terminates the mTLS tunnel (plain → mTLS → plain through loopback);
two hops are an outbound and an inbound process, as with two ztunnels. stunnel4 runs in the
same topology. Every scenario is measured once per round, rounds are interleaved, and the
medians are reported. Load generator, proxies and backends are separate processes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Processes:
    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        process = subprocess.Popen(argv, **kwargs)  # type: ignore[call-overload]
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ensure_stunnel() -> str:
    path = shutil.which("stunnel4") or shutil.which("stunnel")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "stunnel4"], check=True)
        path = shutil.which("stunnel4")
    assert path is not None
    return path


def build_loadgen(work: Path) -> str:
    binary = work / "loadgen"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "hbone" / "loadgen.c")], check=True)
    return str(binary)


def write_certs(work: Path) -> Path:
    from ambientmesh.testing.pki import TestPKI

    pki = TestPKI()
    certs = work / "certs"
    certs.mkdir()
    for name, identity in (("server", "bench/server"), ("client", "bench/client")):
        credential = pki.issue(identity)
        (certs / f"{name}.pem").write_bytes(credential.chain_pem)
        (certs / f"{name}.key").write_bytes(credential.key_pem)
        (certs / f"{name}.key").chmod(0o600)
    (certs / "roots.pem").write_bytes(pki.roots_pem)
    return certs


def stunnel_config(
    work: Path, certs: Path, name: str, services: list[tuple[str, bool, int, int]]
) -> Path:
    lines = ["foreground = yes", "pid =", "debug = 3", f"output = {work / name}.log"]
    for service, client, accept, connect in services:
        role = "client" if client else "server"
        lines += [
            f"[{service}]",
            f"client = {'yes' if client else 'no'}",
            f"accept = 127.0.0.1:{accept}",
            f"connect = 127.0.0.1:{connect}",
            f"cert = {certs / role}.pem",
            f"key = {certs / role}.key",
            f"CAfile = {certs}/roots.pem",
            "verifyChain = yes",
            "requireCert = yes",
            "sslVersionMin = TLSv1.3",
        ]
    path = work / f"{name}.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(loadgen: str, *args: str) -> list[float]:
    out = subprocess.run([loadgen, *args], check=True, capture_output=True, text=True)
    return [float(value) for value in out.stdout.split()]


def measure(loadgen: str, echo: int, sink: int, seconds: float) -> dict[str, float]:
    (gbps,) = run(loadgen, "bulk", "127.0.0.1", str(sink), str(seconds))
    rps1, p50_1, p99_1 = run(loadgen, "rr", "127.0.0.1", str(echo), "1", "2")
    rps32, p50_32, p99_32 = run(loadgen, "rr", "127.0.0.1", str(echo), "32", "2")
    return {
        "gbps": gbps,
        "rps1": rps1,
        "p50_1": p50_1,
        "p99_1": p99_1,
        "rps32": rps32,
        "p50_32": p50_32,
        "p99_32": p99_32,
    }


def setup(
    kind: str,
    hops: int,
    *,
    procs: Processes,
    work: Path,
    certs: Path,
    stunnel: str,
    echo: int,
    sink: int,
) -> tuple[tuple[int, int], list[int]]:
    """Start one scenario's proxies; returns (echo port, sink port) to load and proxy pids."""
    out_echo, out_sink = free_port(), free_port()
    if kind == "hbone":
        hbone_port = free_port()
        routes = [
            "--route",
            f"{out_echo}=127.0.0.1:{echo}",
            "--route",
            f"{out_sink}=127.0.0.1:{sink}",
        ]
        script = str(HERE / "hbone" / "proxy.py")
        common = ["--certs", str(certs)]
        if hops == 1:
            both = procs.start(
                PYTHON,
                script,
                "both",
                *common,
                "--hbone-port",
                str(hbone_port),
                "--hbone",
                f"127.0.0.1:{hbone_port}",
                *routes,
            )
            pids = [both.pid]
        else:
            inbound = procs.start(
                PYTHON, script, "inbound", *common, "--hbone-port", str(hbone_port)
            )
            wait_port(hbone_port)
            outbound = procs.start(
                PYTHON, script, "outbound", *common, "--hbone", f"127.0.0.1:{hbone_port}", *routes
            )
            pids = [outbound.pid, inbound.pid]
    else:
        tls_echo, tls_sink = free_port(), free_port()
        out_services = [
            ("out-echo", True, out_echo, tls_echo),
            ("out-sink", True, out_sink, tls_sink),
        ]
        in_services = [("in-echo", False, tls_echo, echo), ("in-sink", False, tls_sink, sink)]
        if hops == 1:
            conf = stunnel_config(work, certs, "one", out_services + in_services)
            pids = [procs.start(stunnel, str(conf)).pid]
        else:
            inbound = procs.start(stunnel, str(stunnel_config(work, certs, "in", in_services)))
            outbound = procs.start(stunnel, str(stunnel_config(work, certs, "out", out_services)))
            pids = [outbound.pid, inbound.pid]
    wait_port(out_echo)
    wait_port(out_sink)
    return (out_echo, out_sink), pids


def idle_memory(loadgen: str, port: int, pids: list[int], count: int) -> float:
    """KiB of proxy RSS (all proxy processes together) per idle tunneled connection."""
    before = sum(rss_kib(pid) for pid in pids)
    holder = subprocess.Popen(
        [loadgen, "idle", "127.0.0.1", str(port), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    line = holder.stdout.readline()
    if line.strip() != b"ready":
        holder.kill()
        holder.wait()
        return float("nan")
    time.sleep(1.0)
    after = sum(rss_kib(pid) for pid in pids)
    holder.stdin.close()
    holder.wait()
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="bulk transfer length")
    parser.add_argument("--idle", default="1000,10000", help="idle connection counts")
    args = parser.parse_args()
    raise_nofile()
    stunnel = ensure_stunnel()
    procs = Processes()
    scenarios = [("direct", 0), ("hbone", 1), ("stunnel", 1), ("hbone", 2), ("stunnel", 2)]
    samples: dict[tuple[str, int], list[dict[str, float]]] = {s: [] for s in scenarios}
    memory: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="hbone-bench-") as tmp:
        work = Path(tmp)
        loadgen = build_loadgen(work)
        certs = write_certs(work)
        echo, sink = free_port(), free_port()
        try:
            procs.start(loadgen, "echo", str(echo))
            procs.start(loadgen, "sink", str(sink))
            wait_port(echo)
            wait_port(sink)
            for round_number in range(args.rounds):
                for kind, hops in scenarios:
                    print(f"round {round_number + 1}: {kind} {hops} hop(s)", file=sys.stderr)
                    if kind == "direct":
                        samples[(kind, hops)].append(measure(loadgen, echo, sink, args.seconds))
                        continue
                    before = set(procs.running)
                    (p_echo, p_sink), _ = setup(
                        kind,
                        hops,
                        procs=procs,
                        work=work,
                        certs=certs,
                        stunnel=stunnel,
                        echo=echo,
                        sink=sink,
                    )
                    samples[(kind, hops)].append(measure(loadgen, p_echo, p_sink, args.seconds))
                    for process in set(procs.running) - before:
                        procs.stop(process)
            for count in (int(n) for n in args.idle.split(",") if n):
                for kind in ("hbone", "stunnel"):
                    if kind == "stunnel" and count * 2 > 19_000:
                        continue  # stunnel's outbound holds two fds per connection: over the limit
                    before = set(procs.running)
                    (p_echo, _), pids = setup(
                        kind,
                        2,
                        procs=procs,
                        work=work,
                        certs=certs,
                        stunnel=stunnel,
                        echo=echo,
                        sink=sink,
                    )
                    print(f"idle {count}: {kind}", file=sys.stderr)
                    memory[(kind, count)] = idle_memory(loadgen, p_echo, pids, count)
                    for process in set(procs.running) - before:
                        procs.stop(process)
        finally:
            procs.stop_all()
    report(samples, memory, args)


def report(
    samples: dict[tuple[str, int], list[dict[str, float]]],
    memory: dict[tuple[str, int], float],
    args: argparse.Namespace,
) -> None:
    def median(key: tuple[str, int], metric: str) -> float:
        return statistics.median(sample[metric] for sample in samples[key])

    names = {
        ("direct", 0): "direct TCP",
        ("hbone", 1): "HBONE, 1 hop",
        ("stunnel", 1): "stunnel4, 1 hop",
        ("hbone", 2): "HBONE, 2 hops",
        ("stunnel", 2): "stunnel4, 2 hops",
    }
    today = datetime.date.today().isoformat()
    command = f".venv/bin/python benchmarks/hbone_bench.py --rounds {args.rounds}"
    print(
        f"Measured {today} with `{command}` (medians of {args.rounds} interleaved rounds; "
        f"bulk {args.seconds:g} s, request/response 2 s).\n"
    )
    print(
        "| path | bulk Gbit/s | 1-conn req/s | 1-conn p50 / p99 µs "
        "| 32-conn req/s | 32-conn p50 / p99 µs |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for key, name in names.items():
        print(
            f"| {name} | {median(key, 'gbps'):.2f} | {median(key, 'rps1'):,.0f} | "
            f"{median(key, 'p50_1'):.0f} / {median(key, 'p99_1'):.0f} "
            f"| {median(key, 'rps32'):,.0f} "
            f"| {median(key, 'p50_32'):.0f} / {median(key, 'p99_32'):.0f} |"
        )
    print()
    print(
        "| idle tunneled connections (2 hops) | HBONE KiB/conn (both proxies) | stunnel4 KiB/conn |"
    )
    print("|---|---:|---:|")
    for count in sorted({count for _, count in memory}):
        stunnel = memory.get(("stunnel", count))
        stunnel_text = f"{stunnel:.1f}" if stunnel is not None else "n/a (fd limit)"
        print(f"| {count:,} | {memory[('hbone', count)]:.1f} | {stunnel_text} |")
    print()
    ratio = median(("hbone", 2), "gbps") / median(("stunnel", 2), "gbps")
    rate = median(("hbone", 2), "rps1") / median(("stunnel", 2), "rps1")
    print(
        f"Two hops vs stunnel4: throughput {ratio:.2f}x (target ≥ 1.0x), "
        f"1-connection request rate {rate:.2f}x (target ≥ 0.8x)."
    )


if __name__ == "__main__":
    os.chdir(HERE.parent)
    main()
