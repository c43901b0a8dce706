"""Delta ADS over real gRPC with mutual TLS: subscribe, incremental pushes, ACK/NACK, reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest, DeltaDiscoveryResponse
from ambientmesh.proto.workload_pb2 import Address, Workload
from ambientmesh.testing.pki import TestPKI
from ambientmesh.xds.server import DeltaDiscoveryServer
from ambientmesh.xds.subscription import Answer
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, METHOD_PATH

from .harness import (
    WAIT,
    Answers,
    Recorder,
    channel_factory,
    make_client,
    node_authenticator,
    start_server,
)


def wl(uid: str, node: str = "n1") -> Address:
    return Address(workload=Workload(uid=uid, name=uid, node=node))


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture
def answers() -> Answers:
    return Answers()


@pytest.fixture
def discovery(pki: TestPKI, answers: Answers) -> DeltaDiscoveryServer:
    server = DeltaDiscoveryServer(
        authenticate=node_authenticator(pki.trust_domain),
        type_order=(AUTHORIZATION_TYPE_URL, ADDRESS_TYPE_URL),
        observer=answers,
    )
    server.update(ADDRESS_TYPE_URL, {f"w{i}": wl(f"w{i}") for i in range(50)})
    server.update(AUTHORIZATION_TYPE_URL, {"ns/p": Authorization(name="p", namespace="ns")})
    return server


@pytest.fixture(params=["tcp", "unix"])
async def target(
    request: pytest.FixtureRequest, pki: TestPKI, discovery: DeltaDiscoveryServer, tmp_path: Path
) -> AsyncIterator[str]:
    address = "127.0.0.1:0" if request.param == "tcp" else f"unix:{tmp_path}/xds.sock"
    server, target = await start_server(pki, discovery, address)
    yield target
    await server.stop(None)


async def test_client_syncs_and_gets_only_what_changed(
    pki: TestPKI, discovery: DeltaDiscoveryServer, target: str
) -> None:
    recorder = Recorder()
    client = make_client(pki, pki.issue_node_credential("node-a"), lambda: target, recorder)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(client.run())
        async with asyncio.timeout(WAIT):
            await client.synced.wait()
        assert len(recorder.addresses) == 50
        assert set(recorder.policies) == {"ns/p"}

        discovery.update(ADDRESS_TYPE_URL, {"w7": wl("w7", node="n2"), "w8": None})
        await recorder.wait_for(lambda: "w8" not in recorder.addresses)
        assert recorder.batches[-1] == ({"w7"}, {"w8"})
        assert recorder.addresses["w7"].workload.node == "n2"
        task.cancel()


async def test_one_change_reaches_every_subscriber(
    pki: TestPKI, discovery: DeltaDiscoveryServer, target: str
) -> None:
    recorders = [Recorder() for _ in range(3)]
    clients = [
        make_client(pki, pki.issue_node_credential(f"node-{i}"), lambda: target, recorder)
        for i, recorder in enumerate(recorders)
    ]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(client.run()) for client in clients]
        async with asyncio.timeout(WAIT):
            for client in clients:
                await client.synced.wait()
        assert {info.peer.node for info in discovery.streams()} == {"node-0", "node-1", "node-2"}
        discovery.update(ADDRESS_TYPE_URL, {"new": wl("new")})
        for recorder in recorders:
            await recorder.wait_for(lambda r=recorder: "new" in r.addresses)  # type: ignore[misc]
            assert recorder.batches[-1] == ({"new"}, set())
        for task in tasks:
            task.cancel()


async def test_nack_is_remembered_until_the_resource_changes(
    pki: TestPKI, discovery: DeltaDiscoveryServer, answers: Answers, target: str
) -> None:
    recorder = Recorder()
    client = make_client(pki, pki.issue_node_credential("node-a"), lambda: target, recorder)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(client.run())
        async with asyncio.timeout(WAIT):
            await client.synced.wait()

        discovery.update(ADDRESS_TYPE_URL, {"w1": wl("w1", node="bad")})
        await answers.wait_for(lambda: answers.count(Answer.NACK) == 1)
        assert recorder.rejected == [{"w1"}]
        assert recorder.addresses["w1"].workload.node == "n1"  # last good state kept
        assert client.stats.nacks == 1

        # Reconsidering everything must not resend the rejected version; a later change
        # to another resource arrives alone.
        discovery.refresh_views()
        discovery.update(ADDRESS_TYPE_URL, {"w2": wl("w2", node="n9")})
        await recorder.wait_for(lambda: recorder.addresses["w2"].workload.node == "n9")
        assert recorder.rejected == [{"w1"}]
        assert recorder.batches[-1] == ({"w2"}, set())

        # A new version of the rejected resource is sent.
        discovery.update(ADDRESS_TYPE_URL, {"w1": wl("w1", node="n3")})
        await recorder.wait_for(lambda: recorder.addresses["w1"].workload.node == "n3")
        task.cancel()


async def test_reconnect_keeps_state_and_receives_only_the_difference(
    pki: TestPKI, answers: Answers, tmp_path: Path
) -> None:
    """Static stability: the proxy keeps serving its last config while the server is gone."""
    authenticate = node_authenticator(pki.trust_domain)
    first = DeltaDiscoveryServer(authenticate=authenticate)
    first.update(
        ADDRESS_TYPE_URL,
        {"same": wl("same"), "changed": wl("changed"), "gone": wl("gone")},
    )
    address = f"unix:{tmp_path}/xds.sock"
    server, target = await start_server(pki, first, address)
    recorder = Recorder()
    client = make_client(pki, pki.issue_node_credential("node-a"), lambda: target, recorder)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(client.run())
        async with asyncio.timeout(WAIT):
            await client.synced.wait()
        await server.stop(None)

        second = DeltaDiscoveryServer(authenticate=authenticate, observer=answers)
        second.update(
            ADDRESS_TYPE_URL,
            {"same": wl("same"), "changed": wl("changed", node="n2"), "added": wl("added")},
        )
        server, _ = await start_server(pki, second, address)
        try:
            await recorder.wait_for(lambda: "added" in recorder.addresses)
            assert recorder.batches[-1] == ({"changed", "added"}, {"gone"})
            assert set(recorder.addresses) == {"same", "changed", "added"}
            assert client.stats.streams >= 2
        finally:
            task.cancel()
            await server.stop(None)


async def test_workload_credential_is_refused(pki: TestPKI, target: str) -> None:
    workload = pki.issue("ns/sa")
    connect = channel_factory(pki.roots_pem, workload.chain_pem, workload.key_pem, lambda: target)
    async with connect() as channel:
        call = channel.stream_stream(
            METHOD_PATH,
            request_serializer=DeltaDiscoveryRequest.SerializeToString,
            response_deserializer=DeltaDiscoveryResponse.FromString,
        )()
        await call.write(DeltaDiscoveryRequest(type_url=ADDRESS_TYPE_URL))
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async with asyncio.timeout(WAIT):
                await call.read()
        assert failure.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "not a node identity" in (failure.value.details() or "")


async def test_credential_from_another_ca_is_refused(target: str) -> None:
    stranger = TestPKI()
    node = stranger.issue_node_credential("node-a")
    # Trust the real server's root, but present a client chain it does not trust.
    connect = channel_factory(stranger.roots_pem, node.chain_pem, node.key_pem, lambda: target)
    async with connect() as channel:
        call = channel.stream_stream(
            METHOD_PATH,
            request_serializer=DeltaDiscoveryRequest.SerializeToString,
            response_deserializer=DeltaDiscoveryResponse.FromString,
        )()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await _first_response(call)
        assert failure.value.code() is grpc.StatusCode.UNAVAILABLE


async def _first_response(call: grpc.aio.StreamStreamCall) -> None:
    async with asyncio.timeout(WAIT):
        await call.write(DeltaDiscoveryRequest(type_url=ADDRESS_TYPE_URL))
        await call.read()


async def test_request_without_type_is_refused(pki: TestPKI, target: str) -> None:
    node = pki.issue_node_credential("node-a")
    connect = channel_factory(pki.roots_pem, node.chain_pem, node.key_pem, lambda: target)
    async with connect() as channel:
        call = channel.stream_stream(
            METHOD_PATH,
            request_serializer=DeltaDiscoveryRequest.SerializeToString,
            response_deserializer=DeltaDiscoveryResponse.FromString,
        )()
        await call.write(DeltaDiscoveryRequest())
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async with asyncio.timeout(WAIT):
                await call.read()
        assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
