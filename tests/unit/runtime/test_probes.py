"""Readiness probe specs from Kubernetes objects, and threshold counting."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ambientmesh.errors import InvalidInput
from ambientmesh.runtime.probes import (
    Exec,
    HttpGet,
    Probe,
    ReadinessTracker,
    TcpSocket,
    parse_probe,
)


def test_kubernetes_defaults_apply() -> None:
    probe = parse_probe({"tcpSocket": {"port": 8080}})
    assert probe == Probe(
        action=TcpSocket(port=8080),
        initial_delay=0,
        period=10,
        timeout=1,
        success_threshold=1,
        failure_threshold=3,
    )


def test_every_action_and_field_is_read() -> None:
    probe = parse_probe(
        {
            "httpGet": {
                "port": "http",
                "path": "/ready",
                "host": "10.244.1.2",
                "scheme": "HTTPS",
                "httpHeaders": [{"name": "X-A", "value": "1"}],
            },
            "initialDelaySeconds": 2,
            "periodSeconds": 3,
            "timeoutSeconds": 4,
            "successThreshold": 2,
            "failureThreshold": 5,
        },
        named_ports={"http": 8443},
    )
    assert probe.action == HttpGet(
        port=8443,
        path="/ready",
        host=IPv4Address("10.244.1.2"),
        scheme="HTTPS",
        headers=(("X-A", "1"),),
    )
    assert (probe.initial_delay, probe.period, probe.timeout) == (2, 3, 4)
    assert (probe.success_threshold, probe.failure_threshold) == (2, 5)
    assert parse_probe({"exec": {"command": ["cat", "/ready"]}}).action == Exec(
        command=("cat", "/ready")
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "exactly one"),
        ({"tcpSocket": {"port": 1}, "exec": {"command": ["x"]}}, "exactly one"),
        ({"tcpSocket": {"port": 0}}, "tcpSocket.port"),
        ({"tcpSocket": {"port": "web"}}, "names no container port"),
        ({"tcpSocket": {"port": 1, "host": "db.example"}}, "IPv4 address"),
        ({"httpGet": {"port": 1, "path": "ready"}}, "absolute path"),
        ({"httpGet": {"port": 1, "scheme": "FTP"}}, "HTTP or HTTPS"),
        (
            {"httpGet": {"port": 1, "httpHeaders": [{"name": "X\r\nY", "value": ""}]}},
            "httpHeaders\\[0\\].name",
        ),
        (
            {"httpGet": {"port": 1, "httpHeaders": [{"name": "X", "value": "a\r\nb"}]}},
            "httpHeaders\\[0\\].value",
        ),
        ({"exec": {"command": []}}, "exec.command"),
        ({"tcpSocket": {"port": 1}, "periodSeconds": -1}, "periodSeconds"),
        ({"tcpSocket": {"port": 1}, "failureThreshold": 0}, "thresholds"),
    ],
)
def test_bad_probes_are_refused_with_the_field_named(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_probe(spec)


def test_readiness_needs_success_threshold_in_a_row_and_falls_after_failure_threshold() -> None:
    tracker = ReadinessTracker(
        Probe(action=TcpSocket(port=1), success_threshold=2, failure_threshold=3)
    )
    assert not tracker.ready
    assert [tracker.observe(ok) for ok in (True, False, True)] == [False, False, False]
    assert tracker.observe(True)
    assert tracker.ready
    assert [tracker.observe(ok) for ok in (False, False, True, False, False)] == [False] * 5
    assert tracker.observe(False)
    assert not tracker.ready
