"""ZDS messages against the istio.workload.zds schema: names, field numbers, bytes on the wire."""

from __future__ import annotations

import pytest

from ambientmesh.capture.zds_messages import (
    AddWorkload,
    DelWorkload,
    KeepWorkload,
    SnapshotSent,
    WorkloadInfo,
    decode_ack,
    decode_hello,
    decode_request,
    encode_ack,
    encode_hello,
    encode_request,
)
from ambientmesh.errors import RemoteProtocolError
from ambientmesh.proto import zds_pb2

INFO = WorkloadInfo(name="web-0", namespace="shop", service_account="web")


def test_schema_matches_istio_ztunnel_zds_proto() -> None:
    """Package, message names and field numbers of istio/ztunnel proto/zds.proto."""
    assert zds_pb2.DESCRIPTOR.package == "istio.workload.zds"
    request = zds_pb2.WorkloadRequest.DESCRIPTOR
    assert request.full_name == "istio.workload.zds.WorkloadRequest"
    assert {f.name: f.number for f in request.fields} == {
        "add": 1,
        "del": 2,
        "snapshot_sent": 3,
        "keep": 5,
    }
    assert [f.name for f in request.oneofs_by_name["payload"].fields] == [
        "add",
        "del",
        "snapshot_sent",
        "keep",
    ]
    assert {f.name: f.number for f in zds_pb2.AddWorkload.DESCRIPTOR.fields} == {
        "uid": 1,
        "workload_info": 2,
    }
    assert {f.name: f.number for f in zds_pb2.KeepWorkload.DESCRIPTOR.fields} == {"uid": 1}
    assert {f.name: f.number for f in zds_pb2.DelWorkload.DESCRIPTOR.fields} == {"uid": 2}
    info = zds_pb2.WorkloadInfo.DESCRIPTOR
    assert {f.name: f.number for f in info.fields} == {
        "name": 1,
        "namespace": 2,
        "service_account": 3,
    }
    assert {f.name: f.number for f in zds_pb2.WorkloadResponse.DESCRIPTOR.fields} == {"ack": 1}
    assert {f.name: f.number for f in zds_pb2.Ack.DESCRIPTOR.fields} == {"error": 1}
    assert zds_pb2.Version.Value("V1") == 1
    assert zds_pb2.Version.Value("NOT_USED") == 0


@pytest.mark.parametrize(
    ("request_", "wire"),
    [
        (DelWorkload(uid="u1"), "1204" "1202" "7531"),  # field 2 (del) { field 2 (uid) "u1" }
        (KeepWorkload(uid="u1"), "2a04" "0a02" "7531"),  # field 5 (keep) { field 1 (uid) }
        (SnapshotSent(), "1a00"),  # field 3, empty message
        (
            AddWorkload(uid="u1", info=WorkloadInfo(name="a", namespace="b", service_account="c")),
            "0a0f" "0a027531" "1209" "0a0161" "120162" "1a0163",
        ),
    ],
)  # fmt: skip
def test_requests_have_the_exact_wire_bytes(request_: object, wire: str) -> None:
    assert encode_request(request_).hex() == wire  # type: ignore[arg-type]
    assert decode_request(bytes.fromhex(wire)) == request_


def test_requests_round_trip_through_the_generated_classes() -> None:
    data = encode_request(AddWorkload(uid="uid-9", info=INFO))
    parsed = zds_pb2.WorkloadRequest.FromString(data)
    assert parsed.add.uid == "uid-9"
    assert parsed.add.workload_info.service_account == "web"
    other = zds_pb2.WorkloadRequest(keep=zds_pb2.KeepWorkload(uid="k")).SerializeToString()
    assert decode_request(other) == KeepWorkload(uid="k")


def test_hello_and_acks() -> None:
    assert encode_hello().hex() == "0801"
    assert decode_hello(bytes.fromhex("0801")) == 1
    assert encode_ack().hex() == "0a00"  # ack present, error empty: success
    assert decode_ack(encode_ack()) == ""
    assert decode_ack(encode_ack("no such pod")) == "no such pod"


@pytest.mark.parametrize(
    ("decoder", "data", "fragment"),
    [
        (decode_request, b"\xff\xff\xff", "not valid protobuf"),
        (decode_request, b"", "no known payload"),
        (decode_request, bytes.fromhex("1200"), "empty uid"),
        (decode_request, bytes.fromhex("0a00"), "empty uid"),
        (decode_request, b"\x00" * 20000, "exceeds"),
        (decode_hello, b"", "unsupported version 0"),
        (decode_hello, bytes.fromhex("0802"), "unsupported version 2"),
        (decode_ack, b"", "no ack"),
    ],
)
def test_bad_messages_are_protocol_errors(decoder: object, data: bytes, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError, match=fragment):
        decoder(data)  # type: ignore[operator]
