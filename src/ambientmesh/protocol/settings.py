"""The HTTP/2 settings an HBONE endpoint advertises and enforces (ztunnel's values by default)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ambientmesh.errors import InvalidInput
from ambientmesh.protocol.frames import DEFAULT_WINDOW, LARGEST_FRAME_SIZE, MAX_WINDOW, Setting

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True, slots=True, kw_only=True)
class H2Settings:
    """Local HTTP/2 settings for one side of an HBONE connection.

    The defaults are ztunnel's: 4 MiB stream windows inside a 16 MiB connection window (the
    connection window is larger so that an application waiting on one stream before reading
    another cannot deadlock the connection), 1 MiB frames, 200 concurrent streams, no push.
    """

    initial_stream_window: int = 4 * MiB
    connection_window: int = 16 * MiB
    max_frame_size: int = 1 * MiB
    max_concurrent_streams: int = 200
    max_header_list_size: int = 64 * KiB
    header_table_size: int = 4096

    def __post_init__(self) -> None:
        # Windows below the protocol default would be enforced before the peer has seen our
        # SETTINGS (RFC 9113 §6.5.3), so they are not offered.
        _check_range(
            "initial_stream_window", self.initial_stream_window, DEFAULT_WINDOW, MAX_WINDOW
        )
        _check_range(
            "connection_window", self.connection_window, self.initial_stream_window, MAX_WINDOW
        )
        _check_range("max_frame_size", self.max_frame_size, 16_384, LARGEST_FRAME_SIZE)
        _check_range("max_concurrent_streams", self.max_concurrent_streams, 1, 2**31 - 1)
        _check_range("max_header_list_size", self.max_header_list_size, 1024, 2**31 - 1)
        _check_range("header_table_size", self.header_table_size, 0, 2**31 - 1)

    @classmethod
    def for_client(cls) -> H2Settings:
        """ztunnel's outbound pool caps response header lists at 16 KiB."""
        return cls(max_header_list_size=16 * KiB)

    def with_changes(self, **changes: int) -> H2Settings:
        return replace(self, **changes)

    def advertised(self, *, client: bool) -> list[tuple[int, int]]:
        """The SETTINGS frame payload for this side (the connection window goes in a
        WINDOW_UPDATE, as SETTINGS cannot carry it)."""
        values: list[tuple[int, int]] = [
            (Setting.MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (Setting.INITIAL_WINDOW_SIZE, self.initial_stream_window),
            (Setting.MAX_FRAME_SIZE, self.max_frame_size),
            (Setting.MAX_HEADER_LIST_SIZE, self.max_header_list_size),
        ]
        if self.header_table_size != 4096:
            values.append((Setting.HEADER_TABLE_SIZE, self.header_table_size))
        if client:
            values.append((Setting.ENABLE_PUSH, 0))
        return values


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidInput(f"HTTP/2 setting {name}={value} is outside [{low}, {high}]")
