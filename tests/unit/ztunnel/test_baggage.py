"""baggage, forwarded and traceparent exactly as ztunnel writes and reads them (reference 1.5)."""

from __future__ import annotations

import random

import pytest

from ambientmesh.ztunnel.baggage import (
    Baggage,
    TraceParent,
    connect_headers,
    format_baggage,
    format_forwarded,
    parse_baggage,
    parse_forwarded_host,
    workload_baggage,
)
from ambientmesh.ztunnel.model import Locality, WorkloadType

from .builders import addr, pod, service


def test_workload_baggage_describes_the_workload() -> None:
    w = pod(
        "reviews-v1-abc",
        "10.0.0.1",
        ns="bookinfo",
        cluster_id="Kubernetes",
        workload_name="reviews-v1",
        canonical_name="reviews",
        canonical_revision="v1",
        locality=Locality(region="eu", zone="eu-1"),
    )
    assert workload_baggage(w) == (
        "k8s.cluster.name=Kubernetes,k8s.namespace.name=bookinfo,k8s.deployment.name=reviews-v1,"
        "service.name=reviews,service.version=v1,cloud.region=eu,cloud.availability_zone=eu-1"
    )


@pytest.mark.parametrize("kind", list(WorkloadType))
def test_baggage_workload_key_follows_the_workload_type(kind: WorkloadType) -> None:
    text = format_baggage(Baggage(workload_name="w"), kind)
    assert text == f"k8s.{kind.value}.name=w"
    assert parse_baggage([text]).workload_name == "w"


def test_empty_values_are_left_out_and_read_as_missing() -> None:
    assert format_baggage(Baggage(), WorkloadType.POD) == ""
    parsed = parse_baggage(["k8s.cluster.name=,k8s.namespace.name=,service.name="])
    assert parsed == Baggage()


def test_baggage_round_trip_and_multiple_headers() -> None:
    original = Baggage(
        cluster_id="c", namespace="ns", workload_name="w", service_name="s", revision="r"
    )
    assert parse_baggage([format_baggage(original, WorkloadType.JOB)]) == original
    split = parse_baggage(["k8s.cluster.name=c", "k8s.namespace.name=ns", "service.name=s"])
    assert (split.cluster_id, split.namespace, split.service_name) == ("c", "ns", "s")


def test_malformed_baggage_is_ignored_never_fatal() -> None:
    parsed = parse_baggage(["garbage,=x,unknown.key=1, service.name = s ;prop=1"])
    assert parsed == Baggage(service_name="s")


def test_forwarded() -> None:
    svc = service("reviews", "10.96.0.1")
    assert format_forwarded(addr("10.0.0.1:5000"), None) == 'for="10.0.0.1:5000"'
    assert format_forwarded(addr("[fd00::1]:5000"), svc) == (
        'for="[fd00::1]:5000";host=reviews.default.svc.cluster.local'
    )
    assert parse_forwarded_host(format_forwarded(addr("10.0.0.1:5000"), svc)) == svc.hostname
    assert parse_forwarded_host('for="10.0.0.1:5000"') is None
    assert parse_forwarded_host('for=a;Host="x.y", for=b;host=z') == "x.y"


def test_traceparent() -> None:
    trace = TraceParent.generate(random.Random(3))
    assert len(trace.header) == 55
    assert TraceParent.parse(trace.header) == trace
    assert trace.header.startswith("00-")
    assert trace.header.endswith("-00")
    for bad in (
        "",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-00",  # all-zero trace id
        "01-" + "a" * 32 + "-" + "1" * 16 + "-00",  # unknown version
        "00-" + "A" * 32 + "-" + "1" * 16 + "-00",  # upper case
        "00-" + "a" * 32 + "-" + "1" * 16 + "-000",  # 56 characters
    ):
        assert TraceParent.parse(bad) is None


def test_connect_headers_order_and_content() -> None:
    source = pod("client", "10.0.0.1", cluster_id="Kubernetes")
    trace = TraceParent(trace_id=1, parent_id=2)
    headers = connect_headers(source, addr("10.0.0.1:1234"), None, trace)
    assert [name for name, _ in headers] == ["baggage", "forwarded", "traceparent"]
    assert dict(headers)["traceparent"] == "00-" + "0" * 31 + "1-" + "0" * 15 + "2-00"
