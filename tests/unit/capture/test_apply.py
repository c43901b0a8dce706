"""Reading `ip -force -batch` failures, which decide whether a repeat install is a no-op."""

from __future__ import annotations

from ambientmesh.capture.apply import batch_failures


def test_each_failed_line_gets_its_own_message() -> None:
    stderr = (
        "RTNETLINK answers: File exists\n"
        "Command failed -:3\n"
        "RTNETLINK answers: No such process\n"
        "Command failed -:5\n"
    )
    assert batch_failures(stderr) == {
        3: "RTNETLINK answers: File exists",
        5: "RTNETLINK answers: No such process",
    }


def test_multi_line_messages_and_file_names() -> None:
    stderr = "Error: ipv4: FIB table does not exist.\nFlush terminated\nCommand failed /tmp/x:2\n"
    assert batch_failures(stderr) == {2: "Error: ipv4: FIB table does not exist. Flush terminated"}


def test_output_without_line_markers_has_no_failures() -> None:
    assert batch_failures('Object "-4" is unknown, try "ip help".\n') == {}
