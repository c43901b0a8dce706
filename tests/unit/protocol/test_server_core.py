"""Server role of the core, against the h2 library as an independent client."""

from __future__ import annotations

import h2.events
import h2.settings
import hyperframe.frame

from ambientmesh.protocol import (
    ConnectionTerminated,
    DataReceived,
    ErrorCode,
    RequestReceived,
    RequestRejected,
    ServerConnection,
    StreamEnded,
    StreamReset,
)
from ambientmesh.protocol.settings import MiB
from tests.unit.protocol.peers import Pair, frames_of, outgoing, server_pair


def connect(pair: Pair, stream_id: int = 1, authority: str = "10.0.0.5:8080", **extra: str) -> None:
    headers = [(":method", "CONNECT"), (":authority", authority), *extra.items()]
    pair.theirs.send_headers(stream_id, headers)


def test_advertises_ztunnel_settings() -> None:
    pair = server_pair()
    remote = pair.theirs.remote_settings
    assert remote[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 4 * MiB
    assert remote[h2.settings.SettingCodes.MAX_FRAME_SIZE] == 1 * MiB
    assert remote[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 200
    assert pair.theirs.outbound_flow_control_window == 16 * MiB


def test_connect_request_reaches_the_application_with_its_headers() -> None:
    pair = server_pair()
    connect(pair, baggage="k8s.namespace.name=a", forwarded='for="10.0.0.9:4000"')
    pair.theirs.send_data(1, b"hello")
    events = pair.to_ours()
    request = next(e for e in events if isinstance(e, RequestReceived))
    assert str(request.authority) == "10.0.0.5:8080"
    assert ("baggage", "k8s.namespace.name=a") in request.headers
    assert ("forwarded", 'for="10.0.0.9:4000"') in request.headers
    assert [bytes(e.data) for e in events if isinstance(e, DataReceived)] == [b"hello"]


def test_answer_200_with_baggage_opens_the_tunnel_both_ways() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.send_response(1, 200, [("baggage", "k8s.pod.name=b")])
    pair.ours.send_data(1, b"from server")
    events = pair.to_theirs()
    response = next(e for e in events if isinstance(e, h2.events.ResponseReceived))
    assert response.headers == [(":status", "200"), ("baggage", "k8s.pod.name=b")]
    assert (
        b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"from server"
    )


def test_non_connect_method_is_answered_400_like_ztunnel() -> None:
    pair = server_pair()
    pair.theirs.send_headers(
        1, [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a:1")]
    )
    events = pair.to_ours()
    assert [e.status for e in events if isinstance(e, RequestRejected)] == [400]
    answer = pair.to_theirs()
    assert any(
        isinstance(e, h2.events.ResponseReceived) and e.headers[0] == (":status", "400")
        for e in answer
    )


def test_unparseable_authority_is_answered_400_like_ztunnel() -> None:
    pair = server_pair()
    connect(pair, authority="10.0.0.5")  # no port
    events = pair.to_ours()
    rejected = [e for e in events if isinstance(e, RequestRejected)]
    assert rejected[0].status == 400
    assert "no port" in rejected[0].reason
    assert not any(isinstance(e, RequestReceived) for e in events)


def test_malformed_field_block_resets_the_stream_with_protocol_error() -> None:
    pair = server_pair()
    # h2 would refuse to send this, so build the block with its encoder by hand.
    block = pair.theirs.encoder.encode(
        [(":method", "CONNECT"), (":authority", "a:1"), ("connection", "close")]
    )
    frame = hyperframe.frame.HeadersFrame(1, data=block, flags=["END_HEADERS"])
    pair.ours.receive_data(frame.serialize())
    (reset,) = [f for f in frames_of(outgoing(pair.ours)) if f.type == 0x3]
    assert reset.error_code == ErrorCode.PROTOCOL_ERROR


def test_end_stream_each_way_is_a_half_close() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.send_response(1, 200)
    pair.to_theirs()
    pair.theirs.end_stream(1)
    assert StreamEnded(stream_id=1) in pair.to_ours()
    assert pair.ours.open_streams == 1  # our half is still open
    pair.ours.send_data(1, b"late reply", end_stream=True)
    events = pair.to_theirs()
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert pair.ours.open_streams == 0


def test_rst_stream_from_the_peer_is_reported_with_its_code() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.send_response(1, 200)
    pair.to_theirs()
    pair.theirs.reset_stream(1, ErrorCode.CONNECT_ERROR)
    assert (
        StreamReset(stream_id=1, error_code=ErrorCode.CONNECT_ERROR, remote=True) in pair.to_ours()
    )


def test_stream_window_is_granted_back_only_when_acknowledged() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.send_response(1, 200)
    pair.to_theirs()
    chunk = b"x" * (1 << 20)
    for _ in range(3):
        pair.theirs.send_data(1, chunk)
    pair.to_ours()
    updates = [f for f in frames_of(outgoing(pair.ours)) if f.type == 0x8]
    # 3 MiB read: the connection window is not yet at its half-way grant, the stream's never is.
    assert all(f.stream_id == 0 for f in updates)
    pair.ours.acknowledge(1, 3 << 20)
    updates = [f for f in frames_of(outgoing(pair.ours)) if f.type == 0x8]
    assert [(f.stream_id, f.window_increment) for f in updates] == [(1, 3 << 20)]


def test_connection_window_is_granted_as_bytes_are_read() -> None:
    pair = server_pair()
    for stream_id in (1, 3, 5):
        connect(pair, stream_id=stream_id)
    pair.to_ours()
    for stream_id in (1, 3, 5):
        pair.ours.send_response(stream_id, 200)
    pair.to_theirs()
    chunk = b"y" * (1 << 20)
    for stream_id in (1, 3, 5):
        for _ in range(3):
            pair.theirs.send_data(stream_id, chunk)
    pair.to_ours()  # 9 MiB read, nothing acknowledged by the application
    updates = [f for f in frames_of(outgoing(pair.ours)) if f.type == 0x8]
    assert [(f.stream_id, f.window_increment) for f in updates] == [(0, 8 << 20)]


def test_data_beyond_the_stream_window_is_a_flow_control_stream_error() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.send_response(1, 200)
    pair.to_theirs()
    over = hyperframe.frame.DataFrame(1, data=b"z" * (1 << 20))
    events = []
    for _ in range(5):  # 5 MiB into a 4 MiB stream window
        events += pair.ours.receive_data(over.serialize())
    assert StreamReset(stream_id=1, error_code=ErrorCode.FLOW_CONTROL_ERROR, remote=False) in events


def test_streams_beyond_the_advertised_limit_are_refused() -> None:
    pair = server_pair()
    for index in range(200):
        connect(pair, stream_id=1 + 2 * index)
    pair.to_ours()
    outgoing(pair.ours)
    # h2 itself honours our limit, so the 201st stream is framed by hand.
    block = pair.theirs.encoder.encode([(":method", "CONNECT"), (":authority", "a:1")])
    pair.ours.receive_data(
        hyperframe.frame.HeadersFrame(401, data=block, flags=["END_HEADERS"]).serialize()
    )
    resets = [f for f in frames_of(outgoing(pair.ours)) if f.type == 0x3]
    assert [(f.stream_id, f.error_code) for f in resets] == [(401, ErrorCode.REFUSED_STREAM)]


def test_goaway_refuses_later_streams() -> None:
    pair = server_pair()
    connect(pair)
    pair.to_ours()
    pair.ours.goaway()
    goaway = frames_of(outgoing(pair.ours))[-1]
    assert (goaway.type, goaway.last_stream_id, goaway.error_code) == (0x7, 1, 0)
    frame = hyperframe.frame.HeadersFrame(
        3,
        data=pair.theirs.encoder.encode([(":method", "CONNECT"), (":authority", "a:1")]),
        flags=["END_HEADERS"],
    )
    assert pair.ours.receive_data(frame.serialize()) == []
    assert frames_of(outgoing(pair.ours))[0].error_code == ErrorCode.REFUSED_STREAM


def test_data_split_into_single_bytes_arrives_intact() -> None:
    pair = server_pair()
    connect(pair)
    pair.theirs.send_data(1, bytes(range(256)) * 100, pad_length=17)
    raw = pair.theirs.data_to_send()
    got = bytearray()
    for index in range(len(raw)):
        for event in pair.ours.receive_data(raw[index : index + 1]):
            if isinstance(event, DataReceived):
                got += event.data
    assert bytes(got) == bytes(range(256)) * 100


def terminated(pair: Pair, raw: bytes) -> tuple[ConnectionTerminated, int]:
    events = pair.ours.receive_data(raw)
    (event,) = [e for e in events if isinstance(e, ConnectionTerminated)]
    goaway = frames_of(outgoing(pair.ours))[-1]
    assert goaway.type == 0x7
    return event, goaway.error_code


def test_oversized_frame_is_a_frame_size_error() -> None:
    pair = server_pair()
    header = ((1 << 20) + 1).to_bytes(3, "big") + b"\x00\x00\x00\x00\x00\x01"
    _, code = terminated(pair, header)
    assert code == ErrorCode.FRAME_SIZE_ERROR


def test_bad_ping_length_is_a_frame_size_error() -> None:
    pair = server_pair()
    _, code = terminated(pair, b"\x00\x00\x07\x06\x00\x00\x00\x00\x00" + b"1234567")
    assert code == ErrorCode.FRAME_SIZE_ERROR


def test_connection_window_overflow_is_a_flow_control_error() -> None:
    pair = server_pair()
    frame = hyperframe.frame.WindowUpdateFrame(0, window_increment=2**31 - 1)
    _, code = terminated(pair, frame.serialize())
    assert code == ErrorCode.FLOW_CONTROL_ERROR


def test_undecodable_header_block_is_a_compression_error() -> None:
    pair = server_pair()
    frame = hyperframe.frame.HeadersFrame(1, data=b"\xff\xff\xff\xff", flags=["END_HEADERS"])
    _, code = terminated(pair, frame.serialize())
    assert code == ErrorCode.COMPRESSION_ERROR


def test_bad_preface_is_a_protocol_error() -> None:
    core = ServerConnection()
    events = core.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(events[-1], ConnectionTerminated)
    assert events[-1].error_code == ErrorCode.PROTOCOL_ERROR


def test_continuation_interrupted_is_a_protocol_error() -> None:
    pair = server_pair()
    block = pair.theirs.encoder.encode([(":method", "CONNECT"), (":authority", "a:1")])
    first = hyperframe.frame.HeadersFrame(1, data=block[:2])
    ping = hyperframe.frame.PingFrame(0, opaque_data=b"12345678")
    _, code = terminated(pair, first.serialize() + ping.serialize())
    assert code == ErrorCode.PROTOCOL_ERROR
