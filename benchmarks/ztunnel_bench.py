"""ztunnel end to end: a captured pod talking to a captured pod on another node through two
ztunnels, against the same two pods uncaptured (direct) and against stunnel4 doing the same
two hops (mutual TLS 1.3 from the client pod to the server pod).

    sudo .venv/bin/python benchmarks/ztunnel_bench.py [--rounds 3] [--seconds 3] [--hold 10000]

Needs root: it builds a throwaway two-node cluster (network namespaces, nftables, the control
plane, a node agent and a ztunnel per node; `tests/namespaced/ztunnel/cluster.py`) and removes
it afterwards. The load generator and backends are C (`benchmarks/ztunnel/loadgen.c`, compiled
here) so they cost little next to the proxies; everything shares the machine's cores. Each
round measures every mode once (interleaved); medians are printed as a markdown table:

- bulk throughput: one connection sending for --seconds;
- request rate and latency: 1 KiB request/response, 1 and 32 connections;
- CPU seconds per 1,000 requests: each ztunnel's (and stunnel's) user+system time during the
  32-connection run, divided by thousands of requests;
- memory: each ztunnel's resident set idle, then with --hold open idle connections.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ambientmesh.testing.pki import TestPKI

HERE = Path(__file__).resolve().parent
# The cluster is built by the end-to-end tests' harness; the repository root makes it importable.
sys.path.insert(0, str(HERE.parent))
cluster_harness = importlib.import_module("tests.namespaced.ztunnel.cluster")
MeshCluster = cluster_harness.MeshCluster
Pod = cluster_harness.Pod
Process = cluster_harness.Process

SINK, ECHO = 9000, 9001
TLS_SINK, TLS_ECHO = 19000, 19001  # stunnel's server side, in the server pod
LOCAL_SINK, LOCAL_ECHO = 29000, 29001  # stunnel's client side, in the client pod
MODES = ("direct", "ztunnel", "stunnel")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class Bench:
    def __init__(self, cluster: MeshCluster, loadgen: str, seconds: float) -> None:
        self.cluster = cluster
        self.loadgen = loadgen
        self.seconds = seconds
        self.client: Pod = cluster.pods["client"]
        self.server: Pod = cluster.pods["server"]
        self.stunnels: list[Process] = []

    async def run_client(self, *argv: str) -> dict[str, Any]:
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.client.netns, self.loadgen, *argv,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"loadgen {argv} failed: {err.decode()}")
        return dict(json.loads(out))

    async def mode(self, mode: str) -> None:
        """Capture both pods for ztunnel; leave them uncaptured otherwise."""
        labels = {} if mode == "ztunnel" else dict(cluster_harness.UNCAPTURED)
        for pod in (self.client, self.server):
            if pod.labels != labels:
                await self.cluster.relabel(pod, labels)
        if mode == "ztunnel":
            await self.cluster.until_dump(
                lambda d: all(w["tunnelProtocol"] == "HBONE" for w in d["workloads"]), "in mesh"
            )

    def targets(self, mode: str) -> tuple[str, int, int]:
        if mode == "stunnel":
            return "127.0.0.1", LOCAL_SINK, LOCAL_ECHO
        return self.server.ip, SINK, ECHO

    def proxies(self, mode: str) -> dict[str, int]:
        if mode == "ztunnel":
            return {f"ztunnel {node}": p.pid for node, p in self.cluster.ztunnels.items()}
        if mode == "stunnel":
            return {s.name: s.pid for s in self.stunnels}
        return {}

    async def measure(self, mode: str) -> dict[str, Any]:
        host, sink, echo = self.targets(mode)
        secs = str(self.seconds)
        result: dict[str, Any] = {"bulk": await self.run_client("bulk", host, str(sink), secs)}
        result["rr1"] = await self.run_client("rr", host, str(echo), "1", "1024", secs)
        pids = self.proxies(mode)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result["rr32"] = await self.run_client("rr", host, str(echo), "32", "1024", secs)
        thousands = result["rr32"]["requests"] / 1000
        result["cpu_per_1000"] = {
            name: (cpu_seconds(pid) - before[name]) / thousands for name, pid in pids.items()
        }
        return result

    async def hold(self, count: int) -> dict[str, Any]:
        """ztunnel memory with ``count`` idle connections from the client pod to the server."""
        await self.mode("ztunnel")
        pids = self.proxies("ztunnel")
        before = {name: rss_kib(pid) for name, pid in pids.items()}
        holder = await self.cluster.spawn_program(
            "hold", self.client.netns, self.loadgen, "hold", self.server.ip, str(ECHO), str(count)
        )
        await self.cluster.wait_log(holder, "held")
        during = {name: rss_kib(pid) for name, pid in pids.items()}
        await holder.stop()
        return {
            name: {
                "before_kib": before[name],
                "with_kib": during[name],
                "per_connection_kib": (during[name] - before[name]) / count,
            }
            for name in pids
        }

    async def start_stunnels(self, work: Path) -> None:
        pki = TestPKI()
        files: dict[str, Path] = {}
        for side in ("client", "server"):
            credential = pki.issue(f"bench/{side}")
            files[f"{side}.crt"] = work / f"{side}.crt"
            files[f"{side}.crt"].write_bytes(credential.chain_pem)
            files[f"{side}.key"] = work / f"{side}.key"
            files[f"{side}.key"].touch(mode=0o600)
            files[f"{side}.key"].write_bytes(credential.key_pem)
        roots = work / "roots.pem"
        roots.write_bytes(pki.roots_pem)
        server = [(TLS_SINK, SINK), (TLS_ECHO, ECHO)]
        client = [
            (LOCAL_SINK, f"{self.server.ip}:{TLS_SINK}"),
            (LOCAL_ECHO, f"{self.server.ip}:{TLS_ECHO}"),
        ]
        configs = {
            "server": _stunnel_config(
                files["server.crt"], files["server.key"], roots, server, client=False
            ),
            "client": _stunnel_config(
                files["client.crt"], files["client.key"], roots, client, client=True
            ),
        }
        for side, pod in (("server", self.server), ("client", self.client)):
            path = work / f"stunnel-{side}.conf"
            path.write_text(configs[side])
            self.stunnels.append(
                await self.cluster.spawn_program(
                    f"stunnel-{side}", pod.netns, "stunnel4", str(path)
                )
            )
        await asyncio.sleep(0.5)  # stunnel prints nothing when it is ready; give it a moment


def _stunnel_config(
    cert: Path, key: Path, roots: Path, services: Sequence[tuple[int, Any]], *, client: bool
) -> str:
    lines = ["foreground = yes", "pid =", "debug = warning", "socket = l:TCP_NODELAY=1",
             "socket = r:TCP_NODELAY=1"]  # fmt: skip
    for accept, connect in services:
        lines += [
            f"[s{accept}]",
            f"client = {'yes' if client else 'no'}",
            f"accept = {'127.0.0.1:' if client else '0.0.0.0:'}{accept}",
            f"connect = {connect if client else f'127.0.0.1:{connect}'}",
            f"cert = {cert}",
            f"key = {key}",
            f"CAfile = {roots}",
            "verifyChain = yes",
            "requireCert = yes",
            "sslVersionMin = TLSv1.3",
        ]
    return "\n".join(lines) + "\n"


def median(samples: list[dict[str, Any]], *path: str) -> float:
    values = []
    for sample in samples:
        value: Any = sample
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def report(
    results: dict[str, list[dict[str, Any]]],
    memory: dict[str, Any],
    idle: dict[str, int],
    args: argparse.Namespace,
) -> str:
    def cells(*path: str, fmt: str = "{:,.0f}") -> list[str]:
        return [fmt.format(median(results[mode], *path)) for mode in MODES]

    def pair(kind: str) -> list[str]:
        return [
            f"{median(results[m], kind, 'p50_us'):,.0f} / {median(results[m], kind, 'p99_us'):,.0f}"
            for m in MODES
        ]

    def cpu(mode: str) -> str:
        names = sorted(results[mode][0]["cpu_per_1000"])
        return " / ".join(f"{median(results[mode], 'cpu_per_1000', n):.3f}" for n in names) or "-"

    base = {q: median(results["direct"], "rr1", q) for q in ("p50_us", "p99_us")}
    added = [
        "-",
        *(
            " / ".join(f"+{median(results[m], 'rr1', q) - base[q]:.0f}" for q in base)
            for m in MODES[1:]
        ),
    ]
    table = [
        ("bulk throughput, 1 connection, Gbit/s", cells("bulk", "gbit_per_s", fmt="{:.2f}")),
        ("1 KiB request/response, 1 connection, req/s", cells("rr1", "rps")),
        ("  latency p50 / p99, µs", pair("rr1")),
        ("  added latency p50 / p99, µs", added),
        ("1 KiB request/response, 32 connections, req/s", cells("rr32", "rps")),
        ("  latency p50 / p99, µs", pair("rr32")),
        (
            "CPU s per 1,000 requests (32 connections), per proxy",
            ["-", cpu("ztunnel"), cpu("stunnel")],
        ),
    ]
    lines = [
        f"{args.rounds} rounds, {args.seconds:g} s per measurement, medians",
        "",
        "| | " + " | ".join(MODES) + " |",
        "|---|" + "---:|" * len(MODES),
        *(f"| {label} | " + " | ".join(values) + " |" for label, values in table),
        "",
        f"| ztunnel | idle RSS | before | with {args.hold:,} open connections | per connection |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in sorted(memory.items()):
        lines.append(
            f"| {name} | {idle[name] / 1024:.1f} MiB | {figures['before_kib'] / 1024:.1f} MiB | "
            f"{figures['with_kib'] / 1024:.1f} MiB | {figures['per_connection_kib']:.1f} KiB |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ztbench-") as directory:
        work = Path(directory)
        loadgen = str(work / "loadgen")
        source = str(HERE / "ztunnel" / "loadgen.c")
        compiler = await asyncio.create_subprocess_exec("gcc", "-O2", "-o", loadgen, source)
        if await compiler.wait():
            raise SystemExit("compiling benchmarks/ztunnel/loadgen.c failed")
        async with cluster_harness.mesh_cluster() as cluster:
            await cluster.namespace("bench", cluster_harness.AMBIENT)
            await cluster.add_pod("client", "node-1", namespace="bench", service_account="client")
            server = await cluster.add_pod(
                "server", "node-2", namespace="bench", service_account="server"
            )
            serving = await cluster.spawn_program(
                "loadgen-serve", server.netns, loadgen, "serve", str(SINK), str(ECHO)
            )
            await cluster.wait_log(serving, "serving")
            await cluster.until_dump(lambda d: len(d["certificates"]) >= 1, "certificates")
            bench = Bench(cluster, loadgen, args.seconds)
            idle = {name: rss_kib(pid) for name, pid in bench.proxies("ztunnel").items()}
            await bench.start_stunnels(work)
            await bench.mode("ztunnel")
            await bench.run_client("rr", server.ip, str(ECHO), "8", "1024", "1")  # warm-up
            results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
            for round_ in range(args.rounds):
                for mode in MODES:
                    await bench.mode(mode)
                    results[mode].append(await bench.measure(mode))
                    print(f"round {round_ + 1} {mode}: {json.dumps(results[mode][-1])}", flush=True)
            memory = await bench.hold(args.hold)
            print(json.dumps({"results": results, "memory": memory, "idle_kib": idle}))
            print()
            print(report(results, memory, idle, args))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hold", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
