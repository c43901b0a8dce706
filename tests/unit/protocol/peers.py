"""Test helpers: drive our protocol core against the h2 library and parse frames with hyperframe."""

from __future__ import annotations

from dataclasses import dataclass

import h2.config
import h2.connection
import hyperframe.frame

from ambientmesh.protocol import ClientConnection, ServerConnection, TunnelConnection
from ambientmesh.protocol.events import DataReceived, Event


def h2_client() -> h2.connection.H2Connection:
    peer = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    peer.initiate_connection()
    return peer


def h2_server() -> h2.connection.H2Connection:
    peer = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    peer.initiate_connection()
    return peer


def outgoing(core: TunnelConnection) -> bytes:
    return b"".join(bytes(part) for part in core.data_to_send())


def frames_of(data: bytes) -> list[hyperframe.frame.Frame]:
    """Parse a byte string of frames with hyperframe (an implementation independent of ours)."""
    result = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = hyperframe.frame.Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        result.append(frame)
        view = view[9 + length :]
    return result


@dataclass
class Pair:
    """Our core on one side, h2 on the other, joined by hand-pumped bytes."""

    ours: TunnelConnection
    theirs: h2.connection.H2Connection

    def to_ours(self) -> list[Event]:
        events = self.ours.receive_data(self.theirs.data_to_send())
        return [_materialise(event) for event in events]

    def to_theirs(self) -> list[object]:
        return list(self.theirs.receive_data(outgoing(self.ours)))

    def settle(self) -> None:
        self.to_ours()
        self.to_theirs()


def _materialise(event: Event) -> Event:
    # DataReceived views point into the receive buffer: keep a copy for assertions.
    if isinstance(event, DataReceived):
        return DataReceived(stream_id=event.stream_id, data=memoryview(bytes(event.data)))
    return event


def server_pair() -> Pair:
    ours = ServerConnection()
    ours.initiate()
    pair = Pair(ours=ours, theirs=h2_client())
    pair.settle()
    return pair


def client_pair() -> Pair:
    ours = ClientConnection()
    ours.initiate()
    pair = Pair(ours=ours, theirs=h2_server())
    pair.to_theirs()
    pair.to_ours()
    pair.to_theirs()
    return pair
