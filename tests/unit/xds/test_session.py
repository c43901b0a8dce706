"""Client session: opening requests, ACK on success, NACK on any failure, versions kept."""

from __future__ import annotations

from collections.abc import Sequence

from ambientmesh.errors import InvalidInput
from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryResponse
from ambientmesh.proto.workload_pb2 import Address, Workload
from ambientmesh.xds.session import ClientSession, Update, Watch
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL


class Store:
    """A handler that applies all-or-nothing and refuses workloads on node "bad"."""

    def __init__(self) -> None:
        self.items: dict[str, Address] = {}

    def apply(self, updates: Sequence[Update[Address]], removed: Sequence[str]) -> None:
        for update in updates:
            if update.message.workload.node == "bad":
                raise InvalidInput(f"{update.name}: node bad is unknown")
        for update in updates:
            self.items[update.name] = update.message
        for name in removed:
            self.items.pop(name, None)


def response(
    nonce: str,
    resources: dict[str, tuple[str, Address]] | None = None,
    removed: Sequence[str] = (),
    type_url: str = ADDRESS_TYPE_URL,
) -> DeltaDiscoveryResponse:
    message = DeltaDiscoveryResponse(type_url=type_url, nonce=nonce, removed_resources=removed)
    for name, (version, address) in (resources or {}).items():
        resource = message.resources.add(name=name, version=version)
        resource.resource.Pack(address)
    return message


def make() -> tuple[ClientSession, Store, list[str]]:
    store = Store()
    seen: list[str] = []

    def policies(updates: Sequence[Update[Authorization]], removed: Sequence[str]) -> None:
        seen.extend(update.message.name for update in updates)

    session = ClientSession(
        Node(id="ztunnel~10.0.0.1~zt.istio-system~istio-system.svc.cluster.local"),
        [
            Watch(type_url=ADDRESS_TYPE_URL, message_type=Address, apply=store.apply),
            Watch(type_url=AUTHORIZATION_TYPE_URL, message_type=Authorization, apply=policies),
        ],
    )
    return session, store, seen


def wl(uid: str, node: str = "n1") -> Address:
    return Address(workload=Workload(uid=uid, node=node))


def test_opening_requests_subscribe_wildcard_to_every_type() -> None:
    session, _, _ = make()
    requests = session.opening_requests()
    assert [r.type_url for r in requests] == [ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL]
    for request in requests:
        assert list(request.resource_names_subscribe) == ["*"]
        assert request.node.id.startswith("ztunnel~")
        assert not request.initial_resource_versions


def test_applied_response_is_acked_and_versions_recorded() -> None:
    session, store, _ = make()
    reply = session.receive(response("n1", {"a": ("v1", wl("a")), "b": ("v1", wl("b"))}))
    assert reply.accepted
    assert reply.request.response_nonce == "n1"
    assert not reply.request.HasField("error_detail")
    assert set(store.items) == {"a", "b"}
    assert dict(session.versions(ADDRESS_TYPE_URL)) == {"a": "v1", "b": "v1"}
    session.receive(response("n2", removed=["a"]))
    assert dict(session.versions(ADDRESS_TYPE_URL)) == {"b": "v1"}


def test_reconnect_sends_initial_resource_versions() -> None:
    session, _, _ = make()
    session.receive(response("n1", {"a": ("v1", wl("a"))}))
    request = session.opening_requests()[0]
    assert dict(request.initial_resource_versions) == {"a": "v1"}


def test_handler_error_is_a_nack_and_nothing_changes() -> None:
    session, store, _ = make()
    session.receive(response("n1", {"a": ("v1", wl("a"))}))
    reply = session.receive(response("n2", {"a": ("v2", wl("a", "bad")), "c": ("v1", wl("c"))}))
    assert not reply.accepted
    assert reply.request.response_nonce == "n2"
    assert "node bad is unknown" in reply.request.error_detail.message
    assert reply.request.error_detail.code == 3
    assert store.items["a"].workload.node == "n1"
    assert "c" not in store.items
    assert dict(session.versions(ADDRESS_TYPE_URL)) == {"a": "v1"}


def test_undecodable_resource_is_a_nack() -> None:
    session, store, _ = make()
    message = DeltaDiscoveryResponse(type_url=ADDRESS_TYPE_URL, nonce="n1")
    resource = message.resources.add(name="a", version="v1")
    resource.resource.type_url = ADDRESS_TYPE_URL
    resource.resource.value = b"\xff\xff\xff"
    reply = session.receive(message)
    assert not reply.accepted
    assert "does not decode" in reply.error
    assert store.items == {}


def test_resource_of_the_wrong_type_is_a_nack() -> None:
    session, _, _ = make()
    message = DeltaDiscoveryResponse(type_url=ADDRESS_TYPE_URL, nonce="n1")
    message.resources.add(name="p", version="v1").resource.Pack(Authorization(name="p"))
    reply = session.receive(message)
    assert not reply.accepted
    assert "istio.security.Authorization" in reply.error


def test_repeated_name_is_a_nack() -> None:
    session, _, _ = make()
    message = response("n1", {"a": ("v1", wl("a"))})
    message.resources.add(name="a", version="v2").resource.Pack(wl("a"))
    assert not session.receive(message).accepted


def test_unknown_type_is_a_nack() -> None:
    session, _, _ = make()
    reply = session.receive(response("n1", type_url="type.googleapis.com/other.Thing"))
    assert not reply.accepted
    assert "not subscribed" in reply.error


def test_synced_after_first_response_of_every_type() -> None:
    session, _, seen = make()
    assert not session.synced
    session.receive(response("n1", {"a": ("v1", wl("a"))}))
    assert not session.synced
    policy = DeltaDiscoveryResponse(type_url=AUTHORIZATION_TYPE_URL, nonce="n2")
    policy.resources.add(name="ns/p", version="v1").resource.Pack(Authorization(name="p"))
    assert session.receive(policy).accepted
    assert session.synced
    assert seen == ["p"]
