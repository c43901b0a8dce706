"""networking.istio.io ServiceEntry: hosts, ports and endpoints added to the mesh's registry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from ambientmesh.resources import common
from ambientmesh.resources.issues import invalid
from ambientmesh.resources.istio_common import ExportTo, Host, WorkloadSelector
from ambientmesh.resources.modeling import (
    DNSLabel,
    Labels,
    Model,
    NonNegative,
    Port,
    Problems,
    rule,
)
from ambientmesh.resources.resource import Resource

PORT_PROTOCOLS = (
    "HTTP",
    "HTTPS",
    "GRPC",
    "GRPC-WEB",
    "HTTP2",
    "MONGO",
    "MYSQL",
    "REDIS",
    "TCP",
    "TLS",
    "UDP",
)


def _protocol_error(value: str) -> str | None:
    if value.upper() not in PORT_PROTOCOLS:
        return invalid(value, f"must be one of {', '.join(PORT_PROTOCOLS)}")
    return None


class ServicePort(Model):
    number: Port
    protocol: Annotated[str, rule(_protocol_error)] | None = None
    name: DNSLabel
    target_port: Port | None = None


def _endpoint_address_error(value: str) -> str | None:
    if value.startswith("unix://"):
        return (
            None if len(value) > len("unix://") else invalid(value, "a unix address needs a path")
        )
    if common.ip_error(value) is None:
        return None
    if common.dns_subdomain_error(value.rstrip(".").lower()) is None:
        return None
    return invalid(value, "must be an IP address, a DNS name or unix://<path>")


class WorkloadEntry(Model):
    address: Annotated[str, rule(_endpoint_address_error)] | None = None
    ports: dict[str, Port] | None = None
    labels: Labels | None = None
    network: str | None = None
    locality: str | None = None
    weight: NonNegative | None = None
    service_account: str | None = None


class ServiceEntrySpec(Model):
    hosts: list[Host]
    addresses: list[Annotated[str, rule(common.ip_or_cidr_error)]] | None = None
    ports: list[ServicePort] | None = None
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    endpoints: list[WorkloadEntry] | None = None
    workload_selector: WorkloadSelector | None = None
    export_to: list[ExportTo] | None = None
    subject_alt_names: list[str] | None = None

    @model_validator(mode="after")
    def _rules(self) -> ServiceEntrySpec:
        problems = Problems()
        if not self.hosts:
            problems.add("hosts", "required value: at least one host")
        for position, host in enumerate(self.hosts):
            if host == "*":
                problems.add(
                    f"hosts[{position}]", 'invalid value "*": a ServiceEntry needs a concrete host'
                )
        if self.endpoints and self.workload_selector is not None:
            problems.add("workloadSelector", "only one of endpoints or workloadSelector may be set")
        self._check_ports(problems)
        self._check_resolution(problems)
        problems.raise_if_any()
        return self

    def _check_ports(self, problems: Problems) -> None:
        names: set[str] = set()
        numbers: set[int] = set()
        for position, port in enumerate(self.ports or []):
            if port.name in names:
                problems.add(f"ports[{position}].name", f"duplicate port name {port.name!r}")
            if port.number in numbers:
                problems.add(f"ports[{position}].number", f"duplicate port number {port.number}")
            names.add(port.name)
            numbers.add(port.number)
        for position, endpoint in enumerate(self.endpoints or []):
            for name in endpoint.ports or {}:
                if name not in names:
                    problems.add(
                        f"endpoints[{position}].ports[{name}]", f"no port named {name!r} in ports"
                    )

    def _check_resolution(self, problems: Problems) -> None:
        resolution = self.resolution or "NONE"
        for position, endpoint in enumerate(self.endpoints or []):
            address = endpoint.address or ""
            if (
                resolution == "STATIC"
                and common.ip_error(address)
                and not address.startswith("unix://")
            ):
                problems.add(
                    f"endpoints[{position}].address",
                    invalid(
                        address, "must be an IP address or unix://<path> for resolution STATIC"
                    ),
                )
        if resolution == "NONE" and self.endpoints:
            problems.add("endpoints", "may not be set for resolution NONE")
        if resolution in ("DNS", "DNS_ROUND_ROBIN") and not self.endpoints:
            for position, host in enumerate(self.hosts):
                if host.startswith("*"):
                    problems.add(
                        f"hosts[{position}]", "a wildcard host needs endpoints for DNS resolution"
                    )


class ServiceEntry(Resource):
    spec: ServiceEntrySpec
