"""A discovery server and clients on real gRPC with mutual TLS, for the xds integration tests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from ambientmesh.errors import IdentityError
from ambientmesh.identity.credential import NodeCredential
from ambientmesh.identity.spiffe import NodeIdentity
from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.proto.workload_pb2 import Address
from ambientmesh.testing.clock import FakeClock
from ambientmesh.testing.pki import RawCredential, TestPKI
from ambientmesh.xds.client import KEEPALIVE_OPTIONS, DeltaDiscoveryClient
from ambientmesh.xds.server import SERVER_OPTIONS, DeltaDiscoveryServer
from ambientmesh.xds.session import Update, Watch
from ambientmesh.xds.subscription import Answer, Received
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, Peer

SERVER_NAME = "istiod.istio-system.svc"
WAIT = 10.0  # seconds any one expected event may take before the test fails


def node_authenticator(trust_domain: str) -> Callable[[grpc.aio.ServicerContext], Peer]:
    """Accept exactly one verified node SPIFFE ID of our trust domain."""

    def authenticate(context: grpc.aio.ServicerContext) -> Peer:
        ids = context.auth_context().get("peer_spiffe_id", [])
        if len(ids) != 1:
            raise IdentityError("the peer presented no single SPIFFE ID")
        identity = NodeIdentity.parse(ids[0].decode())
        if identity.trust_domain != trust_domain:
            raise IdentityError(f"trust domain {identity.trust_domain} is not ours")
        return Peer(node=identity.node, identity=str(identity))

    return authenticate


def server_credential(pki: TestPKI) -> RawCredential:
    return pki.issue_with_sans(
        uris=[f"spiffe://{pki.trust_domain}/ns/istio-system/sa/istiod"], dns_names=[SERVER_NAME]
    )


async def start_server(
    pki: TestPKI, discovery: DeltaDiscoveryServer, address: str
) -> tuple[grpc.aio.Server, str]:
    """Serve ``discovery`` with mTLS on ``address`` (``127.0.0.1:0`` or ``unix:/path``)."""
    credential = server_credential(pki)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((discovery.rpc_handler(),))
    creds = grpc.ssl_server_credentials(
        [(credential.key_pem, credential.chain_pem)],
        root_certificates=pki.roots_pem,
        require_client_auth=True,
    )
    port = server.add_secure_port(address, creds)
    await server.start()
    target = address if address.startswith("unix:") else f"127.0.0.1:{port}"
    return server, target


def channel_factory(
    roots_pem: bytes, chain_pem: bytes, key_pem: bytes, target: Callable[[], str]
) -> Callable[[], grpc.aio.Channel]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=roots_pem, private_key=key_pem, certificate_chain=chain_pem
    )
    options = (*KEEPALIVE_OPTIONS, ("grpc.ssl_target_name_override", SERVER_NAME))
    return lambda: grpc.aio.secure_channel(target(), creds, options=options)


@dataclass
class Recorder:
    """A proxy's view: applies updates all-or-nothing, refuses workloads on node "bad"."""

    addresses: dict[str, Address] = field(default_factory=dict)
    policies: dict[str, Authorization] = field(default_factory=dict)
    batches: list[tuple[set[str], set[str]]] = field(default_factory=list)
    rejected: list[set[str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def apply_addresses(self, updates: Sequence[Update[Address]], removed: Sequence[str]) -> None:
        names = {update.name for update in updates}
        if any(update.message.workload.node == "bad" for update in updates):
            self.rejected.append(names)
            self.changed.set()
            raise IdentityError("workload on node bad refused")
        for update in updates:
            self.addresses[update.name] = update.message
        for name in removed:
            self.addresses.pop(name, None)
        self.batches.append((names, set(removed)))
        self.changed.set()

    def apply_policies(
        self, updates: Sequence[Update[Authorization]], removed: Sequence[str]
    ) -> None:
        for update in updates:
            self.policies[update.name] = update.message
        for name in removed:
            self.policies.pop(name, None)
        self.changed.set()

    def watches(self) -> list[Watch[Address] | Watch[Authorization]]:
        return [
            Watch(type_url=ADDRESS_TYPE_URL, message_type=Address, apply=self.apply_addresses),
            Watch(
                type_url=AUTHORIZATION_TYPE_URL,
                message_type=Authorization,
                apply=self.apply_policies,
            ),
        ]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


class Answers:
    """Collects the server's view of ACKs and NACKs, waitable."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Received]] = []
        self._event = asyncio.Event()

    def __call__(self, peer: Peer, type_url: str, received: Received) -> None:
        self.seen.append((peer.node, received))
        self._event.set()

    def count(self, answer: Answer) -> int:
        return sum(1 for _, received in self.seen if received.answer is answer)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self._event.clear()
                await self._event.wait()


def make_client(
    pki: TestPKI, node: NodeCredential, target: Callable[[], str], recorder: Recorder
) -> DeltaDiscoveryClient:
    return DeltaDiscoveryClient(
        connect=channel_factory(pki.roots_pem, node.chain_pem, node.key_pem, target),
        node=Node(id=f"ztunnel~{node.identity.node}"),
        watches=recorder.watches(),
        clock=FakeClock(autojump=True),
        rng=random.Random(0),
        first_response_timeout=WAIT,
    )
