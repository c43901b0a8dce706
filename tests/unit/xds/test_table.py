"""ResourceTable: content-addressed versions, and only real changes are reported."""

from __future__ import annotations

from ambientmesh.proto.discovery_pb2 import Resource
from ambientmesh.proto.workload_pb2 import Address, PortList, Workload
from ambientmesh.xds.table import ResourceTable
from ambientmesh.xds.types import ADDRESS_TYPE_URL


def workload(uid: str, node: str = "n1") -> Address:
    return Address(workload=Workload(uid=uid, name=uid, node=node))


def test_upsert_reports_change_and_encodes_a_resource() -> None:
    table = ResourceTable()
    assert table.apply(ADDRESS_TYPE_URL, {"a": workload("a")}) == ["a"]
    entry = table.get(ADDRESS_TYPE_URL, "a")
    assert entry is not None
    resource = Resource.FromString(entry.encoded)
    assert resource.name == "a"
    assert resource.version == entry.version
    assert resource.resource.type_url == ADDRESS_TYPE_URL
    assert Address.FromString(resource.resource.value) == workload("a")


def test_same_content_is_not_a_change_and_keeps_its_version() -> None:
    table = ResourceTable()
    table.apply(ADDRESS_TYPE_URL, {"a": workload("a")})
    before = table.get(ADDRESS_TYPE_URL, "a")
    assert table.apply(ADDRESS_TYPE_URL, {"a": workload("a")}) == []
    assert table.get(ADDRESS_TYPE_URL, "a") is before
    assert table.system_version(ADDRESS_TYPE_URL) == "1"


def test_versions_depend_on_content_only_so_they_survive_restarts() -> None:
    first, second = ResourceTable(), ResourceTable()
    message = workload("a")
    message.workload.services["ns/a.ns.svc.cluster.local"].CopyFrom(PortList())
    message.workload.services["ns/b.ns.svc.cluster.local"].CopyFrom(PortList())
    first.apply(ADDRESS_TYPE_URL, {"a": message})
    second.apply(ADDRESS_TYPE_URL, {"a": Address.FromString(message.SerializeToString())})
    one, two = first.get(ADDRESS_TYPE_URL, "a"), second.get(ADDRESS_TYPE_URL, "a")
    assert one is not None
    assert two is not None
    assert one.version == two.version


def test_changed_content_gets_a_new_version() -> None:
    table = ResourceTable()
    table.apply(ADDRESS_TYPE_URL, {"a": workload("a")})
    old = table.get(ADDRESS_TYPE_URL, "a")
    assert table.apply(ADDRESS_TYPE_URL, {"a": workload("a", node="n2")}) == ["a"]
    new = table.get(ADDRESS_TYPE_URL, "a")
    assert old is not None
    assert new is not None
    assert old.version != new.version


def test_aliases_are_encoded_and_part_of_the_version() -> None:
    table = ResourceTable()
    table.apply(ADDRESS_TYPE_URL, {"a": workload("a")})
    assert table.apply(ADDRESS_TYPE_URL, {"a": workload("a")}, {"a": ["/10.0.0.1"]}) == ["a"]
    entry = table.get(ADDRESS_TYPE_URL, "a")
    assert entry is not None
    assert list(Resource.FromString(entry.encoded).aliases) == ["/10.0.0.1"]


def test_delete_reports_only_existing_names() -> None:
    table = ResourceTable()
    table.apply(ADDRESS_TYPE_URL, {"a": workload("a")})
    assert table.apply(ADDRESS_TYPE_URL, {"a": None, "ghost": None}) == ["a"]
    assert table.get(ADDRESS_TYPE_URL, "a") is None
    assert dict(table.entries("type.googleapis.com/unknown")) == {}
