"""Incremental HTTP/2 frame reader: splits bytes into frames and streams DATA payloads through.

Theory of operation. Bytes arrive in arbitrary pieces. Control frames are small and are
handed over whole (assembled in a private buffer when split across reads). DATA payloads
are not assembled: each piece is passed on as a view of the caller's buffer the moment it
arrives, so a 1 MiB frame costs no copy and no waiting for its last byte. Only the frame
header (9 octets) and partial control frames are ever copied. Frame-size rules that need no
connection state (RFC 9113 §4.2) are enforced here; everything else belongs to the subclass.
"""

from __future__ import annotations

from ambientmesh.protocol.frames import (
    FRAME_HEADER_SIZE,
    PREFACE,
    STREAM_ID_MASK,
    ErrorCode,
    Flag,
    FrameType,
    unpack_header,
)


class H2ConnectionError(Exception):
    """A connection error (RFC 9113 §5.4.1); internal to the core, turned into GOAWAY."""

    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Base of the connection core: call ``_feed`` with bytes; override the ``_on_*`` hooks."""

    def __init__(self, *, expect_preface: bool, max_frame_size: int) -> None:
        self._preface_left = len(PREFACE) if expect_preface else 0
        self._max_frame_size = max_frame_size
        self._header = bytearray()  # a split frame header
        # A control frame whose payload is split across reads.
        self._frame_type = 0
        self._frame_flags = 0
        self._frame_stream = 0
        self._frame_left = 0
        self._frame_buf = bytearray()
        # The DATA frame being streamed.
        self._data_stream = 0
        self._data_flags = 0
        self._data_length = 0
        self._data_left = 0
        self._pad_left = 0
        self._need_pad_length = False

    # ------------------------------------------------------------------ hooks

    def _on_data_start(self, stream_id: int, flags: int, length: int, overhead: int) -> None:
        """A DATA frame of ``length`` octets begins; ``overhead`` of them are padding."""

    def _on_data(self, view: memoryview) -> None:
        """A piece of the current DATA frame's payload."""

    def _on_data_end(self) -> None:
        """The current DATA frame is complete."""

    def _on_frame(self, frame_type: int, flags: int, stream_id: int, payload: memoryview) -> None:
        """A whole non-DATA frame."""

    # ------------------------------------------------------------------ reading

    def _feed(self, view: memoryview) -> None:
        pos = 0
        end = len(view)
        if self._preface_left:
            pos = self._check_preface(view)
        while pos < end:
            if self._data_left or self._pad_left or self._need_pad_length:
                pos = self._continue_data(view, pos, end)
            elif self._frame_left:
                pos = self._continue_frame(view, pos, end)
            elif self._header or end - pos < FRAME_HEADER_SIZE:
                pos = self._collect_header(view, pos, end)
            else:
                length = self._start_frame(view, pos)
                pos += FRAME_HEADER_SIZE
                if length and end - pos >= length:
                    # The common case: the whole control frame is already here, no copy.
                    self._frame_left = 0
                    self._on_frame(
                        self._frame_type,
                        self._frame_flags,
                        self._frame_stream,
                        view[pos : pos + length],
                    )
                    pos += length

    def _check_preface(self, view: memoryview) -> int:
        offset = len(PREFACE) - self._preface_left
        take = min(self._preface_left, len(view))
        if view[:take] != PREFACE[offset : offset + take]:
            self._preface_left = 0
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid HTTP/2 connection preface")
        self._preface_left -= take
        return take

    def _collect_header(self, view: memoryview, pos: int, end: int) -> int:
        take = min(FRAME_HEADER_SIZE - len(self._header), end - pos)
        self._header += view[pos : pos + take]
        pos += take
        if len(self._header) == FRAME_HEADER_SIZE:
            header = memoryview(bytes(self._header))
            self._header.clear()
            self._start_frame(header, 0)
        return pos

    def _start_frame(self, view: memoryview, pos: int) -> int:
        """Begin a frame; returns the payload length of a control frame still to be read."""
        high, low, frame_type, flags, stream_id = unpack_header(view, pos)
        length: int = (high << 8) | low
        stream_id &= STREAM_ID_MASK
        if length > self._max_frame_size:
            # RFC 9113 §4.2: oversized frames; we treat every one as a connection error.
            raise H2ConnectionError(
                ErrorCode.FRAME_SIZE_ERROR,
                f"frame of {length} octets exceeds SETTINGS_MAX_FRAME_SIZE {self._max_frame_size}",
            )
        if frame_type == FrameType.DATA:
            self._start_data(stream_id, flags, length)
            return 0
        self._frame_type = frame_type
        self._frame_flags = flags
        self._frame_stream = stream_id
        self._frame_left = length
        self._frame_buf.clear()
        if length == 0:
            self._dispatch_empty()
        return length

    def _dispatch_empty(self) -> None:
        self._on_frame(self._frame_type, self._frame_flags, self._frame_stream, memoryview(b""))

    def _dispatch_buffered(self) -> None:
        payload = memoryview(bytes(self._frame_buf))
        self._frame_buf.clear()
        self._on_frame(self._frame_type, self._frame_flags, self._frame_stream, payload)

    def _continue_frame(self, view: memoryview, pos: int, end: int) -> int:
        take = min(self._frame_left, end - pos)
        self._frame_buf += view[pos : pos + take]
        self._frame_left -= take
        if self._frame_left == 0:
            self._dispatch_buffered()
        return pos + take

    # ------------------------------------------------------------------ DATA

    def _start_data(self, stream_id: int, flags: int, length: int) -> None:
        self._data_stream = stream_id
        self._data_flags = flags
        self._data_length = length
        if flags & Flag.PADDED:
            if length == 0:
                raise H2ConnectionError(
                    ErrorCode.FRAME_SIZE_ERROR, "padded DATA frame too short for its pad length"
                )
            self._need_pad_length = True
            return
        self._on_data_start(stream_id, flags, length, 0)
        self._data_left = length
        if length == 0:
            self._on_data_end()

    def _continue_data(self, view: memoryview, pos: int, end: int) -> int:
        if self._need_pad_length:
            pad = view[pos]
            pos += 1
            self._need_pad_length = False
            if pad >= self._data_length:
                # RFC 9113 §6.1: padding at least as long as the payload is a PROTOCOL_ERROR.
                raise H2ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, "DATA padding is not shorter than the frame"
                )
            self._on_data_start(self._data_stream, self._data_flags, self._data_length, pad + 1)
            self._data_left = self._data_length - 1 - pad
            self._pad_left = pad
        if self._data_left:
            take = min(self._data_left, end - pos)
            if take:
                self._data_left -= take
                self._on_data(view[pos : pos + take])
                pos += take
        if not self._data_left and self._pad_left:
            skip = min(self._pad_left, end - pos)
            self._pad_left -= skip
            pos += skip
        if not self._data_left and not self._pad_left:
            self._on_data_end()
        return pos
