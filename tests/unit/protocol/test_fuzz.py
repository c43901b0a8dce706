"""Random and mutated HTTP/2 input never crashes the core, and every connection it gives up
on is closed with a GOAWAY carrying the RFC 9113 error code (stream errors: RST_STREAM)."""

from __future__ import annotations

import struct

import h2.events
import hyperframe.frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ambientmesh.protocol import (
    ClientConnection,
    ConnectionTerminated,
    ErrorCode,
    ServerConnection,
    TunnelConnection,
)
from ambientmesh.protocol.frames import PREFACE, settings_frame
from tests.unit.protocol.peers import h2_client, h2_server, outgoing

CONNECTION_CODES = {
    ErrorCode.PROTOCOL_ERROR,
    ErrorCode.FRAME_SIZE_ERROR,
    ErrorCode.FLOW_CONTROL_ERROR,
    ErrorCode.COMPRESSION_ERROR,
    ErrorCode.ENHANCE_YOUR_CALM,
}
STREAM_CODES = {
    ErrorCode.NO_ERROR,
    ErrorCode.PROTOCOL_ERROR,
    ErrorCode.FLOW_CONTROL_ERROR,
    ErrorCode.STREAM_CLOSED,
    ErrorCode.REFUSED_STREAM,
    ErrorCode.CANCEL,
}
FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)

raw_frames = st.lists(
    st.tuples(
        st.integers(0, 10),  # frame type, including unknown ones
        st.integers(0, 255),  # flags
        st.sampled_from([0, 1, 2, 3, 5, 7, 2**31 - 1]),  # stream id
        st.binary(max_size=40),
    ),
    max_size=12,
)


def frame_bytes(frame_type: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    length = len(payload)
    return struct.pack(">HBBBL", length >> 8, length & 0xFF, frame_type, flags, stream_id) + payload


def check(core: TunnelConnection, chunks: list[bytes]) -> None:
    """Feed ``chunks``; whatever happens, the core's output must be well-formed HTTP/2."""
    terminated = None
    for chunk in chunks:
        for event in core.receive_data(chunk):
            if isinstance(event, ConnectionTerminated):
                terminated = event
    out = outgoing(core)
    frames = []
    view = memoryview(out[len(PREFACE) :] if out.startswith(PREFACE) else out)
    while view:
        frame, length = hyperframe.frame.Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    for frame in frames:
        if isinstance(frame, hyperframe.frame.RstStreamFrame):
            assert frame.error_code in STREAM_CODES
    if terminated is not None:
        assert terminated.error_code in CONNECTION_CODES
        goaway = frames[-1]
        assert isinstance(goaway, hyperframe.frame.GoAwayFrame)
        assert goaway.error_code == terminated.error_code
        assert core.receive_data(b"\x00" * 64) == []  # a dead connection stays dead


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return [piece for piece in pieces if piece]


@FUZZ
@given(frames=raw_frames, cuts=st.lists(st.integers(0, 10_000), max_size=5))
def test_random_frames_after_a_valid_preface(
    frames: list[tuple[int, int, int, bytes]], cuts: list[int]
) -> None:
    core = ServerConnection()
    core.initiate()
    data = PREFACE + settings_frame([]) + b"".join(frame_bytes(*frame) for frame in frames)
    check(core, split(data, cuts))


def client_transcript() -> bytes:
    """A valid client conversation recorded from h2: preface, CONNECTs, DATA, PING, RST."""
    peer = h2_client()
    peer.send_headers(
        1, [(":method", "CONNECT"), (":authority", "10.0.0.1:80"), ("baggage", "a=b")]
    )
    peer.send_data(1, b"hello" * 20, pad_length=3)
    peer.send_headers(3, [(":method", "CONNECT"), (":authority", "[fd00::1]:443")])
    peer.increment_flow_control_window(1000)
    peer.ping(b"12345678")
    peer.end_stream(1)
    peer.reset_stream(3)
    return peer.data_to_send()


def server_transcript() -> bytes:
    """A valid server conversation recorded from h2, answering our client's first stream."""
    peer = h2_server()
    client = ClientConnection()
    client.initiate()
    client.open_stream("10.0.0.1:80")
    for event in peer.receive_data(outgoing(client)):
        assert not isinstance(event, h2.events.ConnectionTerminated)
    peer.send_headers(1, [(":status", "200"), ("baggage", "x=y")])
    peer.send_data(1, b"reply" * 30, end_stream=True)
    peer.ping(b"abcdefgh")
    return peer.data_to_send()


CLIENT_TRANSCRIPT = client_transcript()
SERVER_TRANSCRIPT = server_transcript()

mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10_000), st.integers(0, 255)
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in edits:
        index = position % max(1, len(buffer))
        if kind == "flip" and buffer:
            buffer[index] ^= value or 1
        elif kind == "insert":
            buffer.insert(index, value)
        elif buffer:
            del buffer[index]
    return bytes(buffer)


@FUZZ
@given(edits=mutations, cuts=st.lists(st.integers(0, 10_000), max_size=5))
def test_mutated_client_conversations(edits: list[tuple[str, int, int]], cuts: list[int]) -> None:
    core = ServerConnection()
    core.initiate()
    check(core, split(mutate(CLIENT_TRANSCRIPT, edits), cuts))


@FUZZ
@given(edits=mutations, cuts=st.lists(st.integers(0, 10_000), max_size=5))
def test_mutated_server_conversations(edits: list[tuple[str, int, int]], cuts: list[int]) -> None:
    core = ClientConnection()
    core.initiate()
    core.open_stream("10.0.0.1:80")
    outgoing(core)
    check(core, split(mutate(SERVER_TRANSCRIPT, edits), cuts))


def test_unmutated_transcripts_are_accepted() -> None:
    core = ServerConnection()
    core.initiate()
    events = core.receive_data(CLIENT_TRANSCRIPT)
    assert not any(isinstance(e, ConnectionTerminated) for e in events)
