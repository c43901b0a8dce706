"""Client role of the core, against the h2 library as an independent server."""

from __future__ import annotations

import h2.events
import pytest

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import (
    DataReceived,
    ErrorCode,
    GoAwayReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    forwarded,
    traceparent,
)
from tests.unit.protocol.peers import client_pair


def test_connect_request_carries_authority_and_hbone_headers() -> None:
    pair = client_pair()
    pair.ours.open_stream(
        "[fd00::5]:80",
        [
            ("baggage", "k8s.cluster.name=c1"),
            ("forwarded", forwarded("10.0.0.9:4000", host="svc.ns.svc.cluster.local")),
            ("traceparent", traceparent(0xABC, 0x123)),
        ],
    )
    (request,) = [e for e in pair.to_theirs() if isinstance(e, h2.events.RequestReceived)]
    assert request.headers == [
        (":method", "CONNECT"),
        (":authority", "[fd00::5]:80"),
        ("baggage", "k8s.cluster.name=c1"),
        ("forwarded", 'for="10.0.0.9:4000";host=svc.ns.svc.cluster.local'),
        ("traceparent", "00-00000000000000000000000000000abc-0000000000000123-00"),
    ]


@pytest.mark.parametrize("status", [401, 503])
def test_non_2xx_answer_ends_the_stream_without_tunnel(status: int) -> None:
    pair = client_pair()
    stream_id = pair.ours.open_stream("10.0.0.1:80")
    pair.to_theirs()
    pair.theirs.send_headers(stream_id, [(":status", str(status))], end_stream=True)
    events = pair.to_ours()
    assert ResponseReceived(stream_id=stream_id, status=status, headers=()) in events
    assert not any(isinstance(e, StreamEnded) for e in events)  # nobody will read a body
    with pytest.raises(LocalProtocolError):
        pair.ours.send_data(stream_id, b"x")


def test_tunnel_bytes_flow_after_200_and_end_stream_half_closes() -> None:
    pair = client_pair()
    stream_id = pair.ours.open_stream("10.0.0.1:80")
    pair.to_theirs()
    pair.theirs.send_headers(stream_id, [(":status", "200")])
    pair.theirs.send_data(stream_id, b"banner", end_stream=True)
    events = pair.to_ours()
    assert [bytes(e.data) for e in events if isinstance(e, DataReceived)] == [b"banner"]
    assert StreamEnded(stream_id=stream_id) in events
    pair.ours.send_data(stream_id, b"request", end_stream=True)
    received = pair.to_theirs()
    assert b"".join(e.data for e in received if isinstance(e, h2.events.DataReceived)) == b"request"


def test_send_window_limits_send_data() -> None:
    pair = client_pair()
    stream_id = pair.ours.open_stream("10.0.0.1:80")
    pair.to_theirs()
    pair.theirs.send_headers(stream_id, [(":status", "200")])
    pair.to_ours()
    assert pair.ours.send_capacity(stream_id) == 65_535  # h2's default stream window
    with pytest.raises(LocalProtocolError):
        pair.ours.send_data(stream_id, b"x" * 65_536)


def test_goaway_stops_new_streams_and_refuses_unseen_ones() -> None:
    pair = client_pair()
    first = pair.ours.open_stream("10.0.0.1:80")
    second = pair.ours.open_stream("10.0.0.1:81")
    pair.to_theirs()
    pair.theirs.close_connection(last_stream_id=first)
    events = pair.to_ours()
    assert any(isinstance(e, GoAwayReceived) and e.last_stream_id == first for e in events)
    assert StreamReset(stream_id=second, error_code=ErrorCode.REFUSED_STREAM, remote=True) in events
    assert not pair.ours.accepting_streams
    with pytest.raises(LocalProtocolError):
        pair.ours.open_stream("10.0.0.1:82")


def test_peer_concurrency_limit_is_respected() -> None:
    pair = client_pair()
    pair.theirs.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    pair.to_ours()
    pair.ours.open_stream("a:1")
    pair.ours.open_stream("a:2")
    assert not pair.ours.accepting_streams
