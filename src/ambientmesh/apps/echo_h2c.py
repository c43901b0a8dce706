"""The echo server's HTTP/2 listener: cleartext HTTP/2 with prior knowledge (h2c), built on h2."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from ambientmesh.apps.echo_reply import EchoRequest, reply


@dataclass(slots=True)
class _Stream:
    headers: list[tuple[str, str]]
    body_bytes: int = 0
    unsent: bytes = b""
    finished: bool = False


class H2cEcho(asyncio.Protocol):
    """One HTTP/2 connection: answers each request with `echo_reply.reply`."""

    def __init__(self, pod: str) -> None:
        self._pod = pod
        self._connection = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self._streams: dict[int, _Stream] = {}
        self._transport: asyncio.Transport | None = None
        self._client = "unknown"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self._client = f"{peer[0]}:{peer[1]}"
        self._connection.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._connection.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # h2 queued a GOAWAY saying why
            self._close()
            return
        for event in events:
            self._handle(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._streams.clear()
        self._transport = None

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = [(_text(name), _text(value)) for name, value in event.headers or []]
            self._streams[event.stream_id] = _Stream(headers=headers)
            if event.stream_ended is not None:
                self._respond(event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.body_bytes += len(event.data or b"")
            # Give the window back at once: the body is counted, not kept.
            length = event.flow_controlled_length or 0
            if length:
                self._connection.acknowledge_received_data(length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._respond(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._streams.pop(event.stream_id, None)
        elif isinstance(event, h2.events.WindowUpdated):
            for stream_id in list(self._streams):
                self._send_body(stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close()

    def _respond(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.finished:
            return
        stream.finished = True
        pseudo = dict(stream.headers)
        answer = reply(
            EchoRequest(
                pod=self._pod,
                client=self._client,
                protocol="HTTP/2",
                method=pseudo.get(":method", ""),
                target=pseudo.get(":path", ""),
                headers=stream.headers,
                body_bytes=stream.body_bytes,
            )
        )
        self._connection.send_headers(
            stream_id,
            [
                (":status", str(answer.status)),
                ("content-type", answer.content_type),
                ("content-length", str(len(answer.body))),
            ],
        )
        stream.unsent = answer.body
        self._send_body(stream_id)

    def _send_body(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or not stream.finished:
            return
        while stream.unsent:
            window = self._connection.local_flow_control_window(stream_id)
            size = min(window, self._connection.max_outbound_frame_size, len(stream.unsent))
            if size <= 0:
                return  # wait for a WINDOW_UPDATE
            self._connection.send_data(stream_id, stream.unsent[:size])
            stream.unsent = stream.unsent[size:]
        self._connection.end_stream(stream_id)
        del self._streams[stream_id]

    def _flush(self) -> None:
        data = self._connection.data_to_send()
        if data and self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value
