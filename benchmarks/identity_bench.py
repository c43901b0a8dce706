"""Certificate authority and mTLS handshake throughput.

    .venv/bin/python benchmarks/identity_bench.py [--certs 2000] [--handshakes 2000]
        [--concurrency 16]

Prints a markdown table:

- certificates signed per second in-process (a ready CSR to a PEM chain, leaf to root);
- the same over gRPC with mutual TLS on a unix socket (CA in a child process, ready CSRs,
  ``--concurrency`` calls in flight), and the full client path of ``CaClient.fetch`` (key
  generation, CSR, call, checks of the answer);
- TLS 1.3 mutual-TLS handshakes per second between a Python client and server on loopback
  (server in a child process; uvloop on both sides), each connection doing the handshake,
  both SPIFFE checks and a one-byte echo, one at a time and ``--concurrency`` at once.

Everything runs on this machine over loopback or a unix socket.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc
import uvloop

from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.ca_service import (
    CertificateService,
    add_certificate_service,
    server_credentials,
)
from ambientmesh.identity import tls
from ambientmesh.identity.ca import CertificateAuthority
from ambientmesh.identity.ca_client import CaClient, open_channel
from ambientmesh.identity.ca_files import CredentialFiles
from ambientmesh.identity.certs import generate_key
from ambientmesh.identity.credential import Credential, NodeCredential
from ambientmesh.identity.csr import build_csr
from ambientmesh.identity.spiffe import Identity
from ambientmesh.proto import ca_pb2, ca_pb2_grpc
from ambientmesh.testing.pki import TestPKI

IDENTITY = Identity.parse("spiffe://cluster.local/ns/bench/sa/client")
SERVER_IDENTITY = Identity.parse("spiffe://cluster.local/ns/bench/sa/server")

Row = tuple[str, str, str]


def csrs(count: int) -> list[str]:
    return [build_csr(IDENTITY, generate_key()).decode() for _ in range(count)]


def bench_in_process(count: int) -> list[Row]:
    ca = CertificateAuthority.open_in_memory()
    requests = csrs(count)
    start = time.perf_counter()
    for csr in requests:
        ca.sign_workload_csr(csr, identity=IDENTITY)
    signed = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(count):
        build_csr(IDENTITY, generate_key())
    made = time.perf_counter() - start
    return [
        (
            "CA signs a CSR (in-process)",
            f"{count / signed:,.0f} certs/s",
            f"{signed / count * 1e6:.0f} µs",
        ),
        (
            "client makes a P-256 key and CSR",
            f"{count / made:,.0f} CSRs/s",
            f"{made / count * 1e6:.0f} µs",
        ),
    ]


# ---------------------------------------------------------------- gRPC
def _serve_ca(state: str, socket_path: str, ready: multiprocessing.synchronize.Event) -> None:
    async def allow(node: str, identity: Identity) -> bool:
        return True

    async def main() -> None:
        ca = CertificateAuthority.open(Path(state))
        ca.write_node_credential("bench-node", Path(state) / "node")
        server = grpc.aio.server()
        add_certificate_service(server, CertificateService(ca, identity_scheduled=allow))
        server.add_secure_port(f"unix:{socket_path}", server_credentials(ca))
        await server.start()
        ready.set()
        await server.wait_for_termination()

    uvloop.run(main())


async def _concurrently(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> float:
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await one(index)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - start


async def _grpc_rows(state: Path, socket_path: str, count: int, concurrency: int) -> list[Row]:
    chain, key, roots = CredentialFiles(directory=state / "node").read()
    node = NodeCredential.from_pem(chain, key)
    requests = csrs(count)
    rows: list[Row] = []
    async with open_channel(f"unix:{socket_path}", node, roots) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)

        async def call(index: int) -> None:
            request = ca_pb2.IstioCertificateRequest(csr=requests[index], validity_duration=3600)
            request.metadata.update({"ImpersonatedIdentity": str(IDENTITY)})
            response = await stub.CreateCertificate(request, timeout=30)
            assert len(response.cert_chain) == 2

        await _concurrently(min(count, 200), concurrency, call)  # warm up
        elapsed = await _concurrently(count, concurrency, call)
        rows.append(
            (
                f"CA signs over gRPC + mTLS, unix socket, {concurrency} in flight",
                f"{count / elapsed:,.0f} certs/s",
                f"{elapsed / count * concurrency * 1e3:.2f} ms",
            )
        )
        client = CaClient(channel, roots_pem=roots, clock=SystemClock())

        async def fetch(index: int) -> None:
            credential = await client.fetch(IDENTITY)
            assert credential.identity == IDENTITY

        elapsed = await _concurrently(count, concurrency, fetch)
        rows.append(
            (
                f"CaClient.fetch end to end, {concurrency} in flight",
                f"{count / elapsed:,.0f} certs/s",
                f"{elapsed / count * concurrency * 1e3:.2f} ms",
            )
        )
    return rows


def bench_grpc(count: int, concurrency: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="am-bench-", dir="/tmp") as directory:
        state, socket_path = Path(directory) / "state", f"{directory}/xds.sock"
        spawn = multiprocessing.get_context("spawn")  # gRPC does not survive fork
        ready = spawn.Event()
        child = spawn.Process(target=_serve_ca, args=(str(state), socket_path, ready), daemon=True)
        child.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("CA process did not start")
            return uvloop.run(_grpc_rows(state, socket_path, count, concurrency))
        finally:
            child.terminate()
            child.join(10)


# ---------------------------------------------------------------- handshakes
def _serve_tls(
    server: Credential, roots: bytes, port: multiprocessing.sharedctypes.Synchronized[int]
) -> None:
    context = tls.server_context(server, roots)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            tls.verify_client_identity(writer.get_extra_info("ssl_object"), "cluster.local")
            writer.write(await reader.readexactly(1))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
        port.value = listener.sockets[0].getsockname()[1]
        await listener.serve_forever()

    uvloop.run(main())


def _connector(
    port: int, context: ssl.SSLContext, latencies: list[float]
) -> Callable[[int], Awaitable[None]]:
    async def connect(index: int) -> None:
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=""
        )
        tls.verify_server_identity(writer.get_extra_info("ssl_object"), {SERVER_IDENTITY})
        writer.write(b"x")
        await reader.readexactly(1)
        writer.close()
        await writer.wait_closed()
        latencies.append(time.perf_counter() - start)

    return connect


async def _handshake_rows(
    port: int, client: Credential, roots: bytes, count: int, concurrency: int
) -> list[Row]:
    context = tls.client_context(client, roots)
    rows: list[Row] = []
    for parallel in sorted({1, concurrency}):
        await _concurrently(min(count, 200), parallel, _connector(port, context, []))  # warm up
        latencies: list[float] = []
        elapsed = await _concurrently(count, parallel, _connector(port, context, latencies))
        rows.append(
            (
                f"mTLS handshake + SPIFFE checks + 1-byte echo, {parallel} at a time",
                f"{count / elapsed:,.0f} handshakes/s",
                f"p50 {statistics.median(latencies) * 1e3:.2f} ms",
            )
        )
    return rows


def bench_handshakes(count: int, concurrency: int) -> list[Row]:
    pki = TestPKI()
    server, client = pki.issue(SERVER_IDENTITY), pki.issue(IDENTITY)
    spawn = multiprocessing.get_context("spawn")
    port = spawn.Value("i", 0)
    child = spawn.Process(target=_serve_tls, args=(server, pki.roots_pem, port), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 30
        while port.value == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("TLS server process did not start")
            time.sleep(0.05)
        return uvloop.run(_handshake_rows(port.value, client, pki.roots_pem, count, concurrency))
    finally:
        child.terminate()
        child.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certs", type=int, default=2000)
    parser.add_argument("--handshakes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rows = bench_in_process(args.certs)
    rows += bench_grpc(args.certs, args.concurrency)
    rows += bench_handshakes(args.handshakes, args.concurrency)
    print(f"<!-- {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs -->")
    print("| what | rate | time per operation |")
    print("|---|---:|---:|")
    for what, rate, per in rows:
        print(f"| {what} | {rate} | {per} |")


if __name__ == "__main__":
    main()
