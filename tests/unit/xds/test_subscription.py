"""Server-side delta subscription state: wildcard, explicit names, ACK/NACK, reconnect, views."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.proto.discovery_common_pb2 import Status
from ambientmesh.proto.discovery_pb2 import DeltaDiscoveryRequest
from ambientmesh.proto.workload_pb2 import Address, Workload
from ambientmesh.xds.subscription import Answer, Push, Subscription
from ambientmesh.xds.table import ResourceTable
from ambientmesh.xds.types import ADDRESS_TYPE_URL

T = ADDRESS_TYPE_URL


def address(uid: str, node: str = "n1") -> Address:
    return Address(workload=Workload(uid=uid, node=node))


class Harness:
    """A subscription against a table, with nonces and a visibility switch."""

    def __init__(self, **kwargs: int) -> None:
        self.table = ResourceTable()
        self.sub = Subscription(T, **kwargs)
        self.hidden: set[str] = set()
        self._nonces = itertools.count(1)

    def put(self, **resources: Address | None) -> None:
        changed = self.table.apply(T, resources)
        self.sub.mark_changed(changed)

    def request(
        self,
        *,
        subscribe: tuple[str, ...] = (),
        unsubscribe: tuple[str, ...] = (),
        initial: Mapping[str, str] | None = None,
        nonce: str = "",
        error: str = "",
    ) -> Answer:
        request = DeltaDiscoveryRequest(
            type_url=T,
            resource_names_subscribe=subscribe,
            resource_names_unsubscribe=unsubscribe,
            initial_resource_versions=initial or {},
            response_nonce=nonce,
        )
        if error:
            request.error_detail.CopyFrom(Status(code=3, message=error))
        return self.sub.on_request(request).answer

    def push(self) -> Push | None:
        visible: Callable[[str], bool] = lambda name: name not in self.hidden  # noqa: E731
        return self.sub.plan(self.table.entries(T), visible, str(next(self._nonces)))

    def version(self, name: str) -> str:
        entry = self.table.get(T, name)
        assert entry is not None
        return entry.version


def names(push: Push | None) -> tuple[set[str], set[str]]:
    assert push is not None
    return {entry.name for entry in push.resources}, set(push.removed)


def test_wildcard_first_request_gets_everything() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("*",))
    assert names(h.push()) == ({"a", "b"}, set())
    assert h.push() is None


def test_empty_first_request_is_a_legacy_wildcard() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request()
    assert h.sub.wildcard
    assert names(h.push()) == ({"a"}, set())


def test_first_request_is_answered_even_when_there_is_nothing() -> None:
    h = Harness()
    h.request(subscribe=("*",))
    push = h.push()
    assert push is not None
    assert push.resources == ()
    assert push.removed == ()


def test_only_changed_resources_are_pushed() -> None:
    h = Harness()
    h.put(**{f"w{i}": address(f"w{i}") for i in range(100)})
    h.request(subscribe=("*",))
    h.push()
    h.request(nonce="1")
    h.put(w7=address("w7", node="n2"))
    assert names(h.push()) == ({"w7"}, set())


def test_unchanged_upsert_pushes_nothing() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("*",))
    h.push()
    h.put(a=address("a"))
    assert h.push() is None


def test_deleted_resource_is_removed() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("*",))
    h.push()
    h.put(a=None)
    assert names(h.push()) == (set(), {"a"})
    assert "a" not in h.sub.held


def test_ack_and_nack_are_told_apart_by_error_detail() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("*",))
    h.push()
    assert h.request(nonce="1") is Answer.ACK
    h.put(a=address("a", node="n2"))
    h.push()
    assert h.request(nonce="2", error="bad") is Answer.NACK
    assert h.request(nonce="2") is Answer.STALE
    assert h.request(nonce="99") is Answer.STALE


def test_nacked_version_is_not_resent_until_it_changes() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("*",))
    h.push()
    h.request(nonce="1")
    good = h.version("a")
    h.put(a=address("a", node="bad"))
    h.push()
    h.request(nonce="2", error="node bad is unknown")
    # The client kept its previous version.
    assert h.sub.held["a"] == good
    # Unrelated changes do not drag the rejected version along.
    h.put(b=address("b", node="n2"))
    assert names(h.push()) == ({"b"}, set())
    # Reconsidering everything does not resend it either.
    h.sub.mark_all()
    assert h.push() is None
    # A new version is sent.
    h.put(a=address("a", node="n3"))
    assert names(h.push()) == ({"a"}, set())


def test_nacked_removal_is_not_repeated() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("*",))
    h.push()
    h.request(nonce="1")
    h.put(a=None)
    h.push()
    h.request(nonce="2", error="cannot remove")
    assert "a" in h.sub.held
    h.sub.mark_all()
    assert h.push() is None


def test_answering_a_nonce_settles_older_responses() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("*",))
    h.push()
    h.put(a=address("a", node="n2"))
    h.push()
    assert h.sub.in_flight == 2
    h.request(nonce="2")
    assert h.sub.in_flight == 0
    assert h.request(nonce="1") is Answer.STALE


def test_reconnect_with_initial_versions_sends_only_the_difference() -> None:
    h = Harness()
    h.put(same=address("same"), changed=address("changed", node="new"), added=address("added"))
    stale = "0123456789abcdef"
    initial = {"same": h.version("same"), "changed": stale, "gone": stale}
    h.request(subscribe=("*",), initial=initial)
    assert names(h.push()) == ({"changed", "added"}, {"gone"})


def test_reconnect_with_everything_current_still_gets_an_answer() -> None:
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("*",), initial={"a": h.version("a")})
    push = h.push()
    assert push is not None
    assert push.resources == ()
    assert push.removed == ()


def test_explicit_names_only() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("a", "missing"))
    # A subscribed name that does not exist is answered with a removal.
    assert names(h.push()) == ({"a"}, {"missing"})
    h.put(b=address("b", node="n2"))
    assert h.push() is None
    h.request(subscribe=("b",))
    assert names(h.push()) == ({"b"}, set())


def test_resubscribing_a_held_name_resends_it() -> None:
    """xDS: the server must answer every name in resource_names_subscribe."""
    h = Harness()
    h.put(a=address("a"))
    h.request(subscribe=("a",))
    h.push()
    h.request(nonce="1", subscribe=("a",))
    assert names(h.push()) == ({"a"}, set())


def test_unsubscribe_forgets_without_removal() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("a", "b"))
    h.push()
    h.request(unsubscribe=("a",))
    assert "a" not in h.sub.held
    h.put(a=address("a", node="n2"))
    assert h.push() is None


def test_leaving_the_wildcard_keeps_explicit_names() -> None:
    h = Harness()
    h.put(a=address("a"), b=address("b"))
    h.request(subscribe=("*", "a"))
    h.push()
    h.request(unsubscribe=("*",))
    assert set(h.sub.held) == {"a"}


def test_hidden_resources_are_not_sent_and_hiding_removes() -> None:
    h = Harness()
    h.hidden = {"secret"}
    h.put(a=address("a"), secret=address("secret"))
    h.request(subscribe=("*",))
    assert names(h.push()) == ({"a"}, set())
    h.hidden = {"a"}
    h.sub.mark_all()
    assert names(h.push()) == ({"secret"}, {"a"})


def test_in_flight_limit_holds_changes_until_acked() -> None:
    h = Harness(max_in_flight=1)
    h.put(a=address("a"))
    h.request(subscribe=("*",))
    h.push()
    h.put(a=address("a", node="n2"))
    assert not h.sub.ready
    assert h.push() is None
    h.request(nonce="1")
    assert names(h.push()) == ({"a"}, set())


def test_too_many_names_is_refused() -> None:
    h = Harness(max_names=2)
    h.request(subscribe=("a", "b"))
    with pytest.raises(InvalidInput, match="more than 2"):
        h.request(subscribe=("c",))
