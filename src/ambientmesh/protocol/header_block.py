"""Header blocks: HEADERS plus CONTINUATION frames into one decoded field list (RFC 9113 §4.3)."""

from __future__ import annotations

from dataclasses import dataclass

import hpack

from ambientmesh.protocol import frames
from ambientmesh.protocol.frames import ErrorCode, Flag
from ambientmesh.protocol.reader import H2ConnectionError

Fields = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderBlock:
    """A complete, decoded header block and the stream it opens or continues."""

    stream_id: int
    fields: Fields
    end_stream: bool


class HeaderBlockAssembler:
    """Collects one header block at a time and decodes it with the connection's HPACK state.

    The size of the encoded block is bounded before HPACK runs: an encoded block is never much
    smaller than the list it decodes to, so the bound stops CONTINUATION floods early.
    """

    __slots__ = ("_block", "_decoder", "_end_stream", "_limit", "_stream_id", "in_progress")

    def __init__(self, *, max_header_list_size: int, header_table_size: int) -> None:
        self._decoder = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._decoder.max_allowed_table_size = header_table_size
        self._limit = max_header_list_size
        # True between a HEADERS without END_HEADERS and the CONTINUATION that ends the block;
        # nothing but that CONTINUATION may arrive meanwhile (RFC 9113 §6.10).
        self.in_progress = False
        self._stream_id = 0
        self._end_stream = False
        self._block = bytearray()

    def headers(self, flags: int, stream_id: int, payload: memoryview) -> HeaderBlock | None:
        """A HEADERS frame; returns the block when the frame ends it."""
        if stream_id == 0:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        fragment = _strip_padding(payload, flags)
        if flags & Flag.PRIORITY:
            if len(fragment) < 5:
                raise H2ConnectionError(
                    ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for PRIORITY"
                )
            if frames.unpack_u32(fragment, 0)[0] & frames.STREAM_ID_MASK == stream_id:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "stream depends on itself")
            fragment = fragment[5:]
        self._stream_id = stream_id
        self._end_stream = bool(flags & Flag.END_STREAM)
        self._block = bytearray(fragment)
        self._check_size()
        if flags & Flag.END_HEADERS:
            return self._finish()
        self.in_progress = True
        return None

    def continuation(self, flags: int, stream_id: int, payload: memoryview) -> HeaderBlock | None:
        """A CONTINUATION frame; returns the block when the frame ends it."""
        if not self.in_progress or stream_id != self._stream_id:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION")
        self._block += payload
        self._check_size()
        if flags & Flag.END_HEADERS:
            self.in_progress = False
            return self._finish()
        return None

    def _check_size(self) -> None:
        if len(self._block) > self._limit:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")

    def _finish(self) -> HeaderBlock:
        block = bytes(self._block)
        self._block.clear()
        try:
            fields = self._decoder.decode(block, raw=True)
        except hpack.OversizedHeaderListError:
            raise H2ConnectionError(
                ErrorCode.ENHANCE_YOUR_CALM, "header list exceeds SETTINGS_MAX_HEADER_LIST_SIZE"
            ) from None
        except (hpack.HPACKError, ValueError, IndexError, TypeError) as error:
            raise H2ConnectionError(
                ErrorCode.COMPRESSION_ERROR, f"HPACK decoding failed: {error}"
            ) from None
        return HeaderBlock(
            stream_id=self._stream_id,
            fields=[(bytes(name), bytes(value)) for name, value in fields],
            end_stream=self._end_stream,
        )


def _strip_padding(payload: memoryview, flags: int) -> memoryview:
    if not flags & Flag.PADDED:
        return payload
    if not payload:
        raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame too short")
    pad = payload[0]
    if pad >= len(payload):
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds frame payload")
    return payload[1 : len(payload) - pad]
