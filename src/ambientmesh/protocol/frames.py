"""HTTP/2 frame layout (RFC 9113 §4 and §6): types, flags, codes, and encoders for small frames."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import IntEnum

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
FRAME_HEADER_SIZE = 9
MAX_WINDOW = 2**31 - 1  # RFC 9113 §6.9.1
DEFAULT_WINDOW = 65_535  # RFC 9113 §6.9.2
DEFAULT_MAX_FRAME_SIZE = 16_384  # RFC 9113 §6.5.2
LARGEST_FRAME_SIZE = 2**24 - 1
STREAM_ID_MASK = 0x7FFF_FFFF

# The 24-bit length is split into a 16-bit and an 8-bit field so one Struct handles the header.
_HEADER = struct.Struct(">HBBBL")
_U32 = struct.Struct(">L")
_U32_PAIR = struct.Struct(">LL")
_SETTING = struct.Struct(">HL")

unpack_header = _HEADER.unpack_from
unpack_u32 = _U32.unpack_from
unpack_u32_pair = _U32_PAIR.unpack_from
unpack_setting = _SETTING.unpack_from


class FrameType(IntEnum):
    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag:
    """Frame flags; the same bit means different things on different frame types."""

    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class ErrorCode(IntEnum):
    """RFC 9113 §7."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD

    @classmethod
    def describe(cls, code: int) -> str:
        """The code's name, or its hex value when it is not one we know (peers may send any)."""
        try:
            return cls(code).name
        except ValueError:
            return f"0x{code:x}"


class Setting(IntEnum):
    """RFC 9113 §6.5.2 identifiers (and RFC 8441's extended CONNECT, which we never enable)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8


def frame_header(length: int, frame_type: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte header that precedes every frame's payload."""
    return _HEADER.pack(length >> 8, length & 0xFF, frame_type, flags, stream_id)


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return frame_header(len(payload), frame_type, flags, stream_id) + payload


def settings_frame(values: Iterable[tuple[int, int]]) -> bytes:
    payload = b"".join(_SETTING.pack(ident, value) for ident, value in values)
    return frame(FrameType.SETTINGS, 0, 0, payload)


SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0)


def ping_frame(opaque: bytes, *, ack: bool = False) -> bytes:
    if len(opaque) != 8:
        raise ValueError("a PING carries exactly 8 octets of opaque data")
    return frame(FrameType.PING, Flag.ACK if ack else 0, 0, opaque)


def goaway_frame(last_stream_id: int, error_code: int, debug: bytes = b"") -> bytes:
    return frame(FrameType.GOAWAY, 0, 0, _U32_PAIR.pack(last_stream_id, error_code) + debug)


def rst_stream_frame(stream_id: int, error_code: int) -> bytes:
    return frame(FrameType.RST_STREAM, 0, stream_id, _U32.pack(error_code))


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(FrameType.WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


def header_block_frames(
    stream_id: int, block: bytes, *, end_stream: bool, max_frame_size: int
) -> bytes:
    """A HEADERS frame and as many CONTINUATION frames as ``block`` needs (RFC 9113 §6.10)."""
    first = block[:max_frame_size]
    rest = block[max_frame_size:]
    flags = (Flag.END_STREAM if end_stream else 0) | (0 if rest else Flag.END_HEADERS)
    parts = [frame(FrameType.HEADERS, flags, stream_id, first)]
    while rest:
        chunk, rest = rest[:max_frame_size], rest[max_frame_size:]
        parts.append(
            frame(FrameType.CONTINUATION, 0 if rest else Flag.END_HEADERS, stream_id, chunk)
        )
    return b"".join(parts)
