"""ZDS messages as typed values, and their protobuf encoding (istio.workload.zds); pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import DecodeError

from ambientmesh.errors import RemoteProtocolError
from ambientmesh.proto import zds_pb2

ZDS_VERSION = zds_pb2.V1
# Datagrams are small (a uid and three names); anything larger is not ZDS.
MAX_MESSAGE_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadInfo:
    name: str
    namespace: str
    service_account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddWorkload:
    """Start proxying for a pod; its network namespace travels beside the message."""

    uid: str
    info: WorkloadInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepWorkload:
    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DelWorkload:
    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotSent:
    pass


_M = TypeVar("_M", zds_pb2.ZdsHello, zds_pb2.WorkloadRequest, zds_pb2.WorkloadResponse)

Request = AddWorkload | KeepWorkload | DelWorkload | SnapshotSent


def encode_hello(version: int = ZDS_VERSION) -> bytes:
    return zds_pb2.ZdsHello(version=version).SerializeToString()  # type: ignore[arg-type]


def decode_hello(data: bytes) -> int:
    """The version ztunnel speaks; only V1 exists."""
    hello = _parse(zds_pb2.ZdsHello(), data, "ZdsHello")
    if hello.version != ZDS_VERSION:
        raise RemoteProtocolError(
            f"ZDS hello carries unsupported version {hello.version}; this agent speaks V1"
        )
    return int(hello.version)


def encode_request(request: Request) -> bytes:
    msg = zds_pb2.WorkloadRequest()
    match request:
        case AddWorkload(uid=uid, info=info):
            msg.add.uid = uid
            msg.add.workload_info.name = info.name
            msg.add.workload_info.namespace = info.namespace
            msg.add.workload_info.service_account = info.service_account
        case KeepWorkload(uid=uid):
            msg.keep.uid = uid
        case DelWorkload(uid=uid):
            # `del` is a Python keyword, so the field is reached by name.
            getattr(msg, "del").uid = uid
        case SnapshotSent():
            msg.snapshot_sent.SetInParent()
    return msg.SerializeToString()


def decode_request(data: bytes) -> Request:
    msg = _parse(zds_pb2.WorkloadRequest(), data, "WorkloadRequest")
    kind = msg.WhichOneof("payload")
    if kind == "add":
        info = msg.add.workload_info
        return AddWorkload(
            uid=_uid(msg.add.uid, "add"),
            info=WorkloadInfo(
                name=info.name, namespace=info.namespace, service_account=info.service_account
            ),
        )
    if kind == "keep":
        return KeepWorkload(uid=_uid(msg.keep.uid, "keep"))
    if kind == "del":
        return DelWorkload(uid=_uid(getattr(msg, "del").uid, "del"))
    if kind == "snapshot_sent":
        return SnapshotSent()
    raise RemoteProtocolError(
        "ZDS WorkloadRequest carries no known payload (add, keep, del, snapshot_sent)"
    )


def encode_ack(error: str = "") -> bytes:
    msg = zds_pb2.WorkloadResponse()
    msg.ack.error = error
    return msg.SerializeToString()


def decode_ack(data: bytes) -> str:
    """The ack's error text; empty means the request succeeded."""
    msg = _parse(zds_pb2.WorkloadResponse(), data, "WorkloadResponse")
    if msg.WhichOneof("payload") != "ack":
        raise RemoteProtocolError("ZDS WorkloadResponse carries no ack")
    return str(msg.ack.error)


def _parse(msg: _M, data: bytes, name: str) -> _M:
    if len(data) > MAX_MESSAGE_BYTES:
        raise RemoteProtocolError(f"ZDS {name} of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise RemoteProtocolError(f"ZDS {name} is not valid protobuf: {exc}") from exc
    return msg


def _uid(uid: str, kind: str) -> str:
    if not uid:
        raise RemoteProtocolError(f"ZDS {kind} request has an empty uid")
    return uid
