"""The two roles of the connection core: what each sends first, and what each refuses to do."""

from __future__ import annotations

import hyperframe.frame
import pytest

from ambientmesh.errors import LocalProtocolError
from ambientmesh.protocol import (
    ClientConnection,
    ErrorCode,
    Role,
    ServerConnection,
    TunnelConnection,
)
from ambientmesh.protocol.frames import PREFACE, Setting
from ambientmesh.protocol.settings import H2Settings, KiB, MiB
from tests.unit.protocol.peers import client_pair, frames_of, outgoing, server_pair


def test_the_shared_base_is_not_a_connection_by_itself() -> None:
    with pytest.raises(TypeError):
        TunnelConnection(settings=H2Settings(), client=True)


def test_client_opens_with_the_preface_and_ztunnels_client_settings() -> None:
    core = ClientConnection()
    core.initiate()
    data = outgoing(core)
    assert core.role is Role.CLIENT
    assert data.startswith(PREFACE)
    settings, window = frames_of(data[len(PREFACE) :])
    assert isinstance(settings, hyperframe.frame.SettingsFrame)
    assert settings.settings[Setting.MAX_HEADER_LIST_SIZE] == 16 * KiB
    assert settings.settings[Setting.ENABLE_PUSH] == 0
    assert isinstance(window, hyperframe.frame.WindowUpdateFrame)
    assert window.window_increment == 16 * MiB - 65_535


def test_server_opens_with_its_settings_and_no_preface() -> None:
    core = ServerConnection()
    core.initiate()
    settings, window = frames_of(outgoing(core))
    assert core.role is Role.SERVER
    assert isinstance(settings, hyperframe.frame.SettingsFrame)
    assert settings.settings[Setting.MAX_HEADER_LIST_SIZE] == 64 * KiB
    assert settings.settings[Setting.MAX_CONCURRENT_STREAMS] == 200
    assert Setting.ENABLE_PUSH not in settings.settings
    assert isinstance(window, hyperframe.frame.WindowUpdateFrame)


def test_a_server_opens_no_stream_and_a_client_answers_none() -> None:
    server = server_pair().ours
    with pytest.raises(LocalProtocolError, match="only a client opens CONNECT streams"):
        server.open_stream("10.0.0.1:80")
    pair = client_pair()
    stream_id = pair.ours.open_stream("10.0.0.1:80")
    with pytest.raises(LocalProtocolError, match="cannot take a response"):
        pair.ours.send_response(stream_id, 200)
    with pytest.raises(LocalProtocolError, match="not open for sending"):
        pair.ours.send_response(stream_id + 2, 200)
    assert pair.ours.stream_ids() == [stream_id]  # nothing was sent or forgotten
    pair.ours.reset_stream(stream_id, ErrorCode.CANCEL)
    assert pair.ours.open_streams == 0
