"""Prometheus metrics of a ztunnel: ``istio_tcp_*`` with Istio's exact names and labels (ref 5.1).

The traffic label set varies per series (locality labels appear only when known), so the
counters are kept in plain dictionaries keyed by the full label tuple and exposed by a custom
collector that writes each sample with its own label names; ``prometheus_client`` only renders
the text. Process metrics (CPU, resident memory) come from its standard process collector.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

import ambientmesh
from ambientmesh.ztunnel.telemetry import (
    TCP_CONNECTIONS_CLOSED,
    TCP_CONNECTIONS_FAILED,
    TCP_CONNECTIONS_OPENED,
    TCP_RECEIVED_BYTES,
    TCP_SENT_BYTES,
    TCP_SOCKETS_OPEN,
    ConnectionOutcome,
    ConnectionRecord,
    Reporter,
    ResponseFlag,
    counts_as_failed,
    metric_bytes,
    traffic_labels,
)

Labels = tuple[tuple[str, str], ...]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_HELP = {
    TCP_CONNECTIONS_OPENED: "The total number of TCP connections opened",
    TCP_CONNECTIONS_CLOSED: "The total number of TCP connections closed",
    TCP_RECEIVED_BYTES: "The size of total bytes received during request in case of a TCP "
    "connection",
    TCP_SENT_BYTES: "The size of total bytes sent during response in case of TCP connection",
    TCP_CONNECTIONS_FAILED: "The total number of TCP connections that failed to establish",
}


class ProxyMetrics:
    """Counters the proxies update on every connection, and gauges read at scrape time."""

    def __init__(self, *, xds_messages: Mapping[str, int] | None = None) -> None:
        self.counters: dict[str, Counter[Labels]] = {name: Counter() for name in _HELP}
        self.sockets_open: Counter[str] = Counter({r.value: 0 for r in Reporter})
        self.active_proxies = 0
        self.proxies_started = 0
        self.proxies_stopped = 0
        self.xds_messages: Mapping[str, int] = xds_messages if xds_messages is not None else {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)

    def opened(self, record: ConnectionRecord) -> None:
        """A connection started (after the plan was made); counts as an open socket."""
        self.counters[TCP_CONNECTIONS_OPENED][traffic_labels(record)] += 1
        self.sockets_open[record.reporter.value] += 1

    def closed(self, record: ConnectionRecord, outcome: ConnectionOutcome) -> None:
        """A connection ended (or failed after it was opened)."""
        labels = traffic_labels(record, outcome.response_flag)
        received, sent = metric_bytes(outcome)
        self.counters[TCP_CONNECTIONS_CLOSED][labels] += 1
        self.counters[TCP_RECEIVED_BYTES][labels] += received
        self.counters[TCP_SENT_BYTES][labels] += sent
        if counts_as_failed(outcome):
            self.counters[TCP_CONNECTIONS_FAILED][labels] += 1
        self.sockets_open[record.reporter.value] -= 1

    def rejected(self, record: ConnectionRecord, flag: ResponseFlag, error: str) -> None:
        """Counted but never relayed: denied by policy, or the application was unreachable."""
        self.opened(record)
        self.closed(record, ConnectionOutcome(response_flag=flag, error=error))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """Sum of a counter over the series matching ``labels`` (for tests and the benchmark)."""
        wanted = set(labels.items())
        return float(sum(v for k, v in self.counters[name].items() if wanted <= set(k)))


class _Collector:
    def __init__(self, metrics: ProxyMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        for name, series in metrics.counters.items():
            family = CounterMetricFamily(name, _HELP[name])
            # Label names differ per series, so samples are added one by one, each its own.
            family.samples.extend(
                Sample(name, dict(labels), value) for labels, value in series.items()
            )
            yield family
        sockets = GaugeMetricFamily(
            TCP_SOCKETS_OPEN, "The number of TCP sockets open", labels=["reporter"]
        )
        for reporter, count in sorted(metrics.sockets_open.items()):
            sockets.add_metric([reporter], count)
        yield sockets
        build = GaugeMetricFamily(
            "istio_build", "Istio component build info", labels=["component", "tag"]
        )
        build.add_metric(["ztunnel", ambientmesh.__version__], 1)
        yield build
        yield GaugeMetricFamily(
            "workload_manager_active_proxy_count",
            "The total number of proxies serving pods on this node",
            value=metrics.active_proxies,
        )
        for suffix, value in (
            ("started", metrics.proxies_started),
            ("stopped", metrics.proxies_stopped),
        ):
            yield CounterMetricFamily(
                f"workload_manager_proxies_{suffix}",
                f"The total number of pod proxies {suffix}",
                value=value,
            )
        messages = CounterMetricFamily(
            "istio_xds_message", "Total number of messages received", labels=["url"]
        )
        for url, count in sorted(metrics.xds_messages.items()):
            messages.add_metric([url], count)
        yield messages
