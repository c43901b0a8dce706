"""Istio's ambient acceptance scenarios, end to end, on one throwaway two-node cluster.

Numbers refer to the scenario table of the team's reference notes (section 7), which follows
istio/istio tests/integration/ambient. Namespace ``mesh`` is enrolled; ``external`` is not.

    node-1: sleep (sa sleep), captured-v1, waypoint-0, external/external-0
    node-2: captured-v2, uncaptured-0, sleep-uncaptured, svc-wp-0, local-0 (localhost only)

Clients are sockets this test opens inside a pod's network namespace, exactly as an
application's would be (captured by the pod's rules); servers are echo processes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.integration.ztunnel.harness import closed_by_peer, sum_samples
from tests.namespaced.ztunnel.cluster import (
    AMBIENT,
    UNCAPTURED,
    MeshCluster,
    Pod,
    connect_in,
    echo,
    greeting,
    http_get,
    mesh_cluster,
)

# One cluster for the module: keep its tests on one xdist worker, in this order (the disruptive
# ones come last).
pytestmark = [
    pytest.mark.root,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("ztunnel-scenarios"),
]

SLEEP = "cluster.local/ns/mesh/sa/sleep"
WAYPOINT = "cluster.local/ns/mesh/sa/waypoint"
Dump = dict[str, Any]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[MeshCluster]:
    async with mesh_cluster() as made:
        for namespace, labels in (("mesh", AMBIENT), ("external", {}), ("istio-system", {})):
            await made.namespace(namespace, labels)
        await made.add_pod("sleep", "node-1", service_account="sleep")
        await made.add_pod("sleep-uncaptured", "node-2", labels=dict(UNCAPTURED))
        for name, node in (("captured-v1", "node-1"), ("captured-v2", "node-2")):
            labels = {"app": "captured", "version": name[-2:]}
            await made.add_pod(name, node, labels=labels, service_account="captured", app=[])
        labels = {"app": "uncaptured", **UNCAPTURED}
        await made.add_pod("uncaptured-0", "node-2", labels=labels, app=[])
        await made.add_pod("svc-wp-0", "node-2", labels={"app": "svc-wp"}, app=[])
        await made.add_pod(
            "local-0", "node-2", labels={"app": "local"}, app=["--host", "127.0.0.1"]
        )
        await made.add_pod(
            "external-0", "node-1", namespace="external", labels={"app": "ext"}, app=[]
        )
        await made.add_waypoint("node-1")
        await made.service("captured", {"app": "captured"})
        await made.service("uncaptured", {"app": "uncaptured"})
        await made.service("local", {"app": "local"})
        await made.service("external", {"app": "ext"}, namespace="external")
        await made.service(
            "svc-wp", {"app": "svc-wp"}, labels={"istio.io/use-waypoint": "waypoint"}
        )
        await made.until_dump(
            lambda d: _service(d, "svc-wp") is not None and _service(d, "svc-wp")["waypoint"],
            "every service known, svc-wp bound to its waypoint",
        )
        yield made


@pytest_asyncio.fixture(loop_scope="module")
async def policies(cluster: MeshCluster) -> AsyncIterator[list[tuple[str, str, str, str]]]:
    """Objects a test applies are recorded here and deleted afterwards, until every ztunnel
    is back to no policy at all."""
    applied: list[tuple[str, str, str, str]] = []
    yield applied
    for api_version, kind, name, namespace in applied:
        await cluster.delete_object(api_version, kind, name, namespace)
    await cluster.until_dump(lambda d: not d["policies"], "policies removed")


async def _apply(
    cluster: MeshCluster,
    applied: list[tuple[str, str, str, str]],
    obj: dict[str, Any],
    ready: Callable[[Dump], bool],
) -> None:
    meta = obj["metadata"]
    applied.append((obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"]))
    await cluster.api_objects(obj)
    await cluster.until_dump(ready, f"{obj['kind']} {meta['name']} in force")


def _service(dump: Dump, name: str) -> dict[str, Any] | None:
    return next((s for s in dump["services"] if s["name"] == name), None)


def _policies_of(dump: Dump, workload: str) -> list[str]:
    return next(w["authorizationPolicies"] for w in dump["workloads"] if w["name"] == workload)


def _captured_reference(name: str) -> Callable[[Dump], bool]:
    """Both captured workloads now list policy ``name``."""
    return lambda d: all(
        any(p.endswith(name) for p in _policies_of(d, w)) for w in ("captured-v1", "captured-v2")
    )


async def _vip(cluster: MeshCluster, name: str, namespace: str = "mesh") -> str:
    dump = await cluster.ztunnel_dump("node-1")
    found = next(s for s in dump["services"] if s["name"] == name and s["namespace"] == namespace)
    return str(found["addresses"][0].split("/", 1)[1])


def _client_of(line: str | None) -> str | None:
    """The client IP the server-first greeting ``hello from <pod> to <ip:port>`` names."""
    return None if line is None else line.rsplit(" ", 1)[1].rsplit(":", 1)[0]


def _pod_of(line: str | None) -> str | None:
    return None if line is None else line.split()[2]


def _peer_authentication(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _authorization(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "mesh"},
        "spec": spec,
    }


# ---------------------------------------------------------------------- traffic shapes


async def test_scenario_1_captured_to_captured_service_is_l4_and_keeps_the_client_ip(
    cluster: MeshCluster,
) -> None:
    """Every protocol through the mesh, to both endpoints (same node and the other node); the
    server sees the client pod's own IP and no proxy header leaks (L4, no waypoint)."""
    sleep = cluster.pods["sleep"]
    vip = await _vip(cluster, "captured")
    seen: set[str | None] = set()
    for _ in range(12):
        line = await greeting(sleep.netns, vip)
        assert _client_of(line) == sleep.ip, line
        seen.add(_pod_of(line))
    assert seen == {"captured-v1", "captured-v2"}
    assert await echo(sleep.netns, vip, b"tcp payload") == b"tcp payload"
    status, body = await http_get(sleep.netns, vip, 8080, "/?format=json")
    assert status == 200
    answer = json.loads(body)
    assert answer["client"].rsplit(":", 1)[0] == sleep.ip
    assert not {"x-request-id", "x-envoy-peer-metadata", "x-forwarded-for"} & set(answer["headers"])
    assert await _h2c_pod(sleep, vip) in {"captured-v1", "captured-v2"}


async def _h2c_pod(client: Pod, vip: str) -> str:
    """One HTTP/2 (prior knowledge) request to the echo app's h2c port; the answering pod."""
    import h2.config
    import h2.connection
    import h2.events

    sock = await connect_in(client.netns, vip, 8081)
    reader, writer = await asyncio.open_connection(sock=sock)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    connection.send_headers(
        1,
        [(":method", "GET"), (":path", "/?format=json"), (":scheme", "http"), (":authority", vip)],
        end_stream=True,
    )
    writer.write(connection.data_to_send())
    body = b""
    try:
        async with asyncio.timeout(5):
            while True:
                data = await reader.read(65536)
                assert data, "h2c connection closed early"
                events = connection.receive_data(data)
                body += b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
                if any(isinstance(e, h2.events.StreamEnded) for e in events):
                    break
                writer.write(connection.data_to_send())
    finally:
        writer.close()
    return str(json.loads(body)["pod"])


async def test_scenario_3_uncaptured_client_bypasses_the_service_waypoint(
    cluster: MeshCluster,
) -> None:
    """Plaintext clients skip waypoints (Istio's known gap): the server sees the client itself.
    A captured client goes through the waypoint: the server sees the waypoint's address."""
    vip = await _vip(cluster, "svc-wp")
    uncaptured = cluster.pods["sleep-uncaptured"]
    assert _client_of(await greeting(uncaptured.netns, vip)) == uncaptured.ip
    sleep = cluster.pods["sleep"]
    assert _client_of(await greeting(sleep.netns, vip)) == cluster.pods["waypoint-0"].ip


async def test_scenario_5_port_bound_only_on_localhost_is_unreachable(cluster: MeshCluster) -> None:
    vip = await _vip(cluster, "local")
    assert await greeting(cluster.pods["sleep"].netns, vip) is None
    local = cluster.pods["local-0"]
    assert _pod_of(await greeting(local.netns, "127.0.0.1")) == "local-0"  # it is listening


async def test_scenario_8_a_pod_calling_its_own_ip_is_not_captured(cluster: MeshCluster) -> None:
    pod = cluster.pods["captured-v1"]

    async def outbound_from_pod() -> float:
        text = await cluster.ztunnel_metrics("node-1")
        return sum_samples(
            text, "istio_tcp_connections_opened_total", reporter="source", source_workload=pod.name
        )

    before = await outbound_from_pod()
    assert _client_of(await greeting(pod.netns, pod.ip)) == pod.ip
    assert await outbound_from_pod() == before  # ztunnel never saw it


# ---------------------------------------------------------------------- PeerAuthentication


async def test_scenario_14_mesh_permissive_allows_every_pair(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    spec = {"mtls": {"mode": "PERMISSIVE"}}
    await _apply(
        cluster,
        policies,
        _peer_authentication("default", "istio-system", spec),
        lambda d: bool(d["policies"]),
    )
    captured, uncaptured = await _vip(cluster, "captured"), await _vip(cluster, "uncaptured")
    for client in ("sleep", "sleep-uncaptured"):
        for vip in (captured, uncaptured):
            line = await greeting(cluster.pods[client].netns, vip)
            assert _client_of(line) == cluster.pods[client].ip, (client, vip)


async def test_scenario_15_mesh_strict_denies_plaintext_into_the_mesh(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    spec = {"mtls": {"mode": "STRICT"}}
    await _apply(
        cluster,
        policies,
        _peer_authentication("default", "istio-system", spec),
        _captured_reference("istio_converted_static_strict"),
    )
    captured, uncaptured = await _vip(cluster, "captured"), await _vip(cluster, "uncaptured")
    assert await greeting(cluster.pods["sleep-uncaptured"].netns, captured) is None
    assert await greeting(cluster.pods["sleep"].netns, captured) is not None
    assert await greeting(cluster.pods["sleep"].netns, uncaptured) is not None


async def test_scenario_16_workload_strict_with_permissive_port(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    spec = {
        "selector": {"matchLabels": {"app": "captured"}},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {"9001": {"mode": "PERMISSIVE"}},
    }
    await _apply(
        cluster,
        policies,
        _peer_authentication("strict-but-9001", "mesh", spec),
        _captured_reference("strict-but-9001"),
    )
    vip = await _vip(cluster, "captured")
    uncaptured = cluster.pods["sleep-uncaptured"]
    assert _client_of(await greeting(uncaptured.netns, vip, 9001)) == uncaptured.ip
    assert await echo(uncaptured.netns, vip, b"x", 9000) is None


async def test_scenario_17_mesh_permissive_with_strict_port(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    mesh_wide = _peer_authentication("default", "istio-system", {"mtls": {"mode": "PERMISSIVE"}})
    await _apply(cluster, policies, mesh_wide, lambda d: bool(d["policies"]))
    spec = {
        "selector": {"matchLabels": {"app": "captured"}},
        "portLevelMtls": {"9001": {"mode": "STRICT"}},
    }
    await _apply(
        cluster,
        policies,
        _peer_authentication("strict-9001", "mesh", spec),
        _captured_reference("strict-9001"),
    )
    vip = await _vip(cluster, "captured")
    uncaptured = cluster.pods["sleep-uncaptured"]
    assert await greeting(uncaptured.netns, vip, 9001) is None
    assert await echo(uncaptured.netns, vip, b"x", 9000) == b"x"


# ---------------------------------------------------------------------- AuthorizationPolicy


async def test_scenario_18_allowing_the_source_and_waypoint_identities(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    spec = {
        "selector": {"matchLabels": {"app": "captured"}},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": [SLEEP, WAYPOINT]}}]}],
    }
    await _apply(
        cluster, policies, _authorization("allow-sleep", spec), _captured_reference("allow-sleep")
    )
    vip = await _vip(cluster, "captured")
    assert await echo(cluster.pods["sleep"].netns, vip, b"tcp") == b"tcp"
    # Plaintext carries no principal, so an ALLOW naming principals never admits it.
    assert await echo(cluster.pods["sleep-uncaptured"].netns, vip, b"tcp") is None


async def test_scenario_19_allowing_only_someone_else_denies_with_a_reset(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    spec = {
        "selector": {"matchLabels": {"app": "captured"}},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/something/sa/else"]}}]}],
    }
    await _apply(
        cluster, policies, _authorization("allow-else", spec), _captured_reference("allow-else")
    )
    captured, uncaptured = await _vip(cluster, "captured"), await _vip(cluster, "uncaptured")
    sleep = cluster.pods["sleep"]
    assert await echo(sleep.netns, captured, b"tcp") is None
    assert await echo(sleep.netns, uncaptured, b"tcp") == b"tcp"  # out-of-mesh: unaffected
    assert await echo(cluster.pods["sleep-uncaptured"].netns, captured, b"tcp") is None


async def test_policy_change_closes_a_live_connection_within_one_second(
    cluster: MeshCluster, policies: list[tuple[str, str, str, str]]
) -> None:
    sleep, target = cluster.pods["sleep"], cluster.pods["captured-v2"]  # across nodes
    sock = await connect_in(sleep.netns, target.ip, 9000)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(b"before")
        async with asyncio.timeout(5):
            assert await reader.readexactly(6) == b"before"
        spec = {
            "selector": {"matchLabels": {"app": "captured"}},
            "action": "DENY",
            "rules": [{"from": [{"source": {"principals": [SLEEP]}}]}],
        }
        policies.append(("security.istio.io/v1", "AuthorizationPolicy", "deny-sleep", "mesh"))
        started = time.monotonic()
        await cluster.api_objects(_authorization("deny-sleep", spec))
        await closed_by_peer(reader)
        assert time.monotonic() - started < 1.0
    finally:
        writer.close()


# ---------------------------------------------------------------------- telemetry, lifecycle


async def test_scenario_32_destination_reports_mutual_tls_tcp_metrics(cluster: MeshCluster) -> None:
    sleep, target = cluster.pods["sleep"], cluster.pods["captured-v2"]
    vip = await _vip(cluster, "captured")
    for _ in range(6):  # some of these land on captured-v2, on node-2
        await echo(sleep.netns, vip, b"metrics")
    assert await echo(sleep.netns, target.ip, b"metrics") == b"metrics"
    labels = {
        "reporter": "destination",
        "connection_security_policy": "mutual_tls",
        "source_principal": f"spiffe://{SLEEP}",
        "destination_principal": "spiffe://cluster.local/ns/mesh/sa/captured",
        "source_workload": "sleep",
        "destination_workload": "captured-v2",
        "destination_service": "captured.mesh.svc.cluster.local",
        "request_protocol": "tcp",
    }
    text = await cluster.ztunnel_metrics("node-2")
    assert sum_samples(text, "istio_tcp_connections_opened_total", **labels) > 0
    assert sum_samples(text, "istio_tcp_received_bytes_total", **labels) > 0


async def test_job_style_client_works_from_its_first_packet(cluster: MeshCluster) -> None:
    """A pod whose client runs and exits at once: its traffic is already captured and carried
    with its identity (the node agent sets the pod up before the application starts)."""
    vip = await _vip(cluster, "captured")
    job = await cluster.add_pod("job-0", "node-2", service_account="job", ready=False)
    code = (
        "import socket,sys; s=socket.create_connection((sys.argv[1], 9001), timeout=8); "
        "print(s.makefile().readline().strip())"
    )
    run = await cluster.spawn("job-0", job.netns, "-c", code, vip)
    assert await run.process.wait() == 0, run.tail()
    assert "hello from captured-" in run.tail()
    text = "".join([await cluster.ztunnel_metrics(node) for node in ("node-1", "node-2")])
    assert (
        sum_samples(
            text,
            "istio_tcp_connections_opened_total",
            reporter="destination",
            source_principal="spiffe://cluster.local/ns/mesh/sa/job",
        )
        >= 1
    )


async def test_payload_never_crosses_nodes_in_plaintext(cluster: MeshCluster) -> None:
    """Capture the router's wire while captured pods talk across nodes: the payload is not
    there; the same search finds the payload of two uncaptured pods."""
    secret, control = f"secret-{secrets.token_hex(8)}", f"control-{secrets.token_hex(8)}"
    pcap = cluster.root / "wire.pcap"
    # --immediate-mode: otherwise packets wait in the capture ring until after our stop.
    argv = ["tcpdump", "-i", "any", "--immediate-mode", "-U", "-n", "-w", str(pcap), "tcp"]
    dump = await cluster.spawn_program("tcpdump", cluster.network.router_netns, *argv)
    await cluster.wait_log(dump, "listening on")
    sleep, uncaptured = cluster.pods["sleep"], cluster.pods["sleep-uncaptured"]
    assert (
        await echo(sleep.netns, cluster.pods["captured-v2"].ip, secret.encode()) == secret.encode()
    )
    external = cluster.pods["external-0"]  # node-1, reached from node-2
    assert await echo(uncaptured.netns, external.ip, control.encode()) == control.encode()
    # On a busy machine tcpdump writes late: wait (bounded) until the control payload, which
    # crossed after the secret's packets, is on disk before stopping it.
    for _ in range(150):
        if control.encode() in pcap.read_bytes():
            break
        await asyncio.sleep(0.1)  # another process's output: nothing to wait on but the file
    await dump.stop()
    wire = pcap.read_bytes()
    assert control.encode() in wire  # the search works...
    assert secret.encode() not in wire  # ...and mesh traffic is encrypted
    hbone = await asyncio.create_subprocess_exec(
        "tcpdump", "-r", str(pcap), "-n", "tcp port 15008",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    packets, _ = await hbone.communicate()
    assert packets.count(b"\n") > 4  # the captured pods' traffic crossed as HBONE


# ---------------------------------------------------------------------- disruption


async def _traffic(client: Pod, vip: str, *, every: float, until: asyncio.Event) -> tuple[int, int]:
    """A request (new connection, read the greeting) every ``every`` seconds until ``until``;
    (succeeded, sent)."""
    results: list[bool] = []

    async def one() -> None:
        results.append(await greeting(client.netns, vip, deadline=8) is not None)

    async with asyncio.TaskGroup() as group:
        while not until.is_set():
            group.create_task(one())
            await asyncio.sleep(every)  # the request schedule itself
    return sum(results), len(results)


async def _under_traffic(
    cluster: MeshCluster, vip: str, every: float, disrupt: Callable[[], Any]
) -> dict[str, tuple[int, int]]:
    done = asyncio.Event()
    clients = ("sleep", "sleep-uncaptured")
    async with asyncio.TaskGroup() as group:
        runs = {
            c: group.create_task(_traffic(cluster.pods[c], vip, every=every, until=done))
            for c in clients
        }
        try:
            await asyncio.sleep(0.5)
            await disrupt()
            await asyncio.sleep(0.5)
        finally:
            done.set()
    return {c: task.result() for c, task in runs.items()}


async def test_scenario_37_rolling_restart_of_the_destination_loses_nothing(
    cluster: MeshCluster,
) -> None:
    old = await cluster.add_pod("rolling-a", "node-2", labels={"app": "rolling"}, app=[])
    vip = await cluster.service("rolling", {"app": "rolling"}, ports=(9001,))
    await cluster.until_dump(lambda d: _service(d, "rolling") is not None, "rolling known")

    async def roll() -> None:
        await cluster.add_pod("rolling-b", "node-1", labels={"app": "rolling"}, app=[])
        await cluster.set_status(old, ready=False)
        await cluster.until_dump(
            lambda d: any(
                w["name"] == "rolling-a" and w["status"] == "UNHEALTHY" for w in d["workloads"]
            ),
            "rolling-a out of the endpoints",
        )
        await cluster.delete_pod(old)

    results = await _under_traffic(cluster, vip, 0.04, roll)
    for client, (ok, sent) in results.items():
        assert ok == sent, f"{client}: {ok}/{sent}"


async def test_scenario_39_relabeling_pods_out_of_and_back_into_the_mesh(
    cluster: MeshCluster,
) -> None:
    """Istio expects at least 50% success here (known gap, istio/istio#53064)."""
    pod = await cluster.add_pod("dyn-0", "node-2", labels={"app": "dyn"}, app=[])
    vip = await cluster.service("dyn", {"app": "dyn"}, ports=(9001,))
    await cluster.until_dump(lambda d: _service(d, "dyn") is not None, "dyn known")
    assert pod.app is not None
    pid = pod.app.pid

    async def relabel() -> None:
        await cluster.relabel(pod, {"app": "dyn", **UNCAPTURED})
        await asyncio.sleep(1.0)
        await cluster.relabel(pod, {"app": "dyn"})
        await asyncio.sleep(1.0)

    results = await _under_traffic(cluster, vip, 0.05, relabel)
    for client, (ok, sent) in results.items():
        assert ok >= sent * 0.5, f"{client}: {ok}/{sent}"
    assert pod.app.alive  # never restarted
    assert pod.app.pid == pid


async def test_scenario_38_ztunnel_restart_keeps_99_percent_and_applications(
    cluster: MeshCluster,
) -> None:
    """A new ztunnel starts beside each old one (SO_REUSEPORT), the node agent replays its pods
    to it, and the old one drains on SIGTERM (Istio asks for 90%; we ask for 99%)."""
    vip = await _vip(cluster, "captured")
    apps = {name: cluster.pods[name].app for name in ("captured-v1", "captured-v2")}
    pids = {name: app.pid for name, app in apps.items() if app is not None}

    async def restart() -> None:
        for node in ("node-1", "node-2"):
            old = cluster.ztunnels[node]
            new = await cluster.start_ztunnel(node, tag="-restarted", port_base=15100)
            cluster.ztunnels[node] = new
            assert await old.stop() == 0, old.tail()

    results = await _under_traffic(cluster, vip, 0.05, restart)
    for client, (ok, sent) in results.items():
        assert sent >= 30, f"{client}: only {sent} requests: the restarts were not covered"
        assert ok >= sent * 0.99, f"{client}: {ok}/{sent}"
    for name, app in apps.items():
        assert app is not None
        assert app.alive  # never restarted
        assert app.pid == pids[name]
