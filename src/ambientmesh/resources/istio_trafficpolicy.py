"""DestinationRule traffic policy: load balancing, connection pool, outlier detection, TLS."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ambientmesh.resources.istio_common import PortSelector
from ambientmesh.resources.modeling import (
    Duration,
    DurationOrZero,
    Model,
    NonEmpty,
    NonNegative,
    Number,
    Percent,
    Port,
    Problems,
    one_of,
    within,
)

# ----------------------------------------------------------------------------- load balancing


class HTTPCookie(Model):
    name: NonEmpty
    path: str | None = None
    ttl: DurationOrZero | None = None
    attributes: list[dict[str, str]] | None = None


class RingHash(Model):
    minimum_ring_size: NonNegative | None = None


class Maglev(Model):
    table_size: NonNegative | None = None


class ConsistentHash(Model):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: RingHash | None = None
    maglev: Maglev | None = None
    minimum_ring_size: NonNegative | None = None

    @model_validator(mode="after")
    def _rules(self) -> ConsistentHash:
        problems = Problems()
        one_of(
            problems,
            "",
            {
                "httpHeaderName": self.http_header_name is not None,
                "httpCookie": self.http_cookie is not None,
                "useSourceIp": bool(self.use_source_ip),
                "httpQueryParameterName": self.http_query_parameter_name is not None,
            },
            required=True,
        )
        one_of(
            problems,
            "maglev",
            {"ringHash": self.ring_hash is not None, "maglev": self.maglev is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


class LocalityDistribute(Model):
    from_: str | None = Field(default=None, alias="from")
    to: dict[str, NonNegative] | None = None


class LocalityFailover(Model):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None


class LocalityLoadBalancer(Model):
    distribute: list[LocalityDistribute] | None = None
    failover: list[LocalityFailover] | None = None
    failover_priority: list[str] | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _rules(self) -> LocalityLoadBalancer:
        problems = Problems()
        one_of(
            problems,
            "",
            {"distribute": bool(self.distribute), "failover": bool(self.failover)},
            required=False,
        )
        for position, rule_ in enumerate(self.distribute or []):
            total = sum((rule_.to or {}).values())
            if total != 100:
                problems.add(f"distribute[{position}].to", f"weights must sum to 100, got {total}")
        problems.raise_if_any()
        return self


class WarmupConfiguration(Model):
    duration: Duration
    minimum_percent: Percent | None = None
    aggression: Annotated[Number, within(1, 1e9)] | None = None


LoadBalancerAlgorithm = Literal[
    "UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"
]


class LoadBalancerSettings(Model):
    simple: LoadBalancerAlgorithm | None = None
    consistent_hash: ConsistentHash | None = None
    locality_lb_setting: LocalityLoadBalancer | None = None
    warmup_duration_secs: Duration | None = None
    warmup: WarmupConfiguration | None = None

    @model_validator(mode="after")
    def _rules(self) -> LoadBalancerSettings:
        problems = Problems()
        one_of(
            problems,
            "simple",
            {"simple": self.simple is not None, "consistentHash": self.consistent_hash is not None},
            required=False,
        )
        problems.raise_if_any()
        return self


# ----------------------------------------------------------------------------- connection pool


class TcpKeepalive(Model):
    probes: NonNegative | None = None
    time: Duration | None = None
    interval: Duration | None = None


class TCPSettings(Model):
    max_connections: NonNegative | None = None
    connect_timeout: Duration | None = None
    tcp_keepalive: TcpKeepalive | None = None
    max_connection_duration: Duration | None = None
    idle_timeout: DurationOrZero | None = None


class HTTP2KeepAlive(Model):
    interval: Duration | None = None
    timeout: Duration | None = None


class HTTPSettings(Model):
    http1_max_pending_requests: NonNegative | None = None
    http2_max_requests: NonNegative | None = None
    max_requests_per_connection: NonNegative | None = None
    max_retries: NonNegative | None = None
    idle_timeout: DurationOrZero | None = None
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: NonNegative | None = None


class ConnectionPoolSettings(Model):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(Model):
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: NonNegative | None = None
    consecutive_gateway_errors: NonNegative | None = None
    consecutive_5xx_errors: NonNegative | None = Field(default=None, alias="consecutive5xxErrors")
    consecutive_errors: NonNegative | None = None
    interval: Duration | None = None
    base_ejection_time: Duration | None = None
    max_ejection_percent: Percent | None = None
    min_health_percent: Percent | None = None
    outlier_detection_http_error_codes: list[Annotated[int, within(100, 599)]] | None = None


class ClientTLSSettings(Model):
    mode: Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"] | None = None
    client_certificate: str | None = None
    private_key: str | None = None
    ca_certificates: str | None = None
    credential_name: str | None = None
    subject_alt_names: list[str] | None = None
    sni: str | None = None
    insecure_skip_verify: bool | None = None
    ca_crl: str | None = None

    @model_validator(mode="after")
    def _rules(self) -> ClientTLSSettings:
        problems = Problems()
        if self.mode == "MUTUAL" and not self.credential_name:
            for name, value in (
                ("clientCertificate", self.client_certificate),
                ("privateKey", self.private_key),
            ):
                if not value:
                    problems.add(
                        name, "required value for mode MUTUAL unless credentialName is set"
                    )
        if self.credential_name and (
            self.client_certificate or self.private_key or self.ca_certificates
        ):
            problems.add(
                "credentialName",
                "may not be combined with clientCertificate, privateKey or caCertificates",
            )
        problems.raise_if_any()
        return self


class ProxyProtocol(Model):
    version: Literal["V1", "V2"] | None = None


class TunnelSettings(Model):
    protocol: Literal["CONNECT", "POST"] | None = None
    target_host: NonEmpty
    target_port: Port


class RetryBudget(Model):
    percent: Percent | None = None
    min_retry_concurrency: NonNegative | None = None


class PortTrafficPolicy(Model):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None


class TrafficPolicy(Model):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: ClientTLSSettings | None = None
    port_level_settings: list[PortTrafficPolicy] | None = Field(default=None, max_length=4096)
    tunnel: TunnelSettings | None = None
    proxy_protocol: ProxyProtocol | None = None
    retry_budget: RetryBudget | None = None

    @model_validator(mode="after")
    def _rules(self) -> TrafficPolicy:
        problems = Problems()
        seen: set[int] = set()
        for position, setting in enumerate(self.port_level_settings or []):
            if setting.port is None:
                problems.add(f"portLevelSettings[{position}].port", "required value")
            elif setting.port.number in seen:
                problems.add(
                    f"portLevelSettings[{position}].port.number",
                    f"duplicate port {setting.port.number}: each port may appear once",
                )
            else:
                seen.add(setting.port.number)
        problems.raise_if_any()
        return self
