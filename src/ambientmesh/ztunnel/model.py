"""What ztunnel knows about the mesh: addresses, workloads, services, ports (reference 3.2)."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from ambientmesh.errors import InvalidInput
from ambientmesh.identity.spiffe import Identity

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

OUTBOUND_PORT = 15001
INBOUND_PLAINTEXT_PORT = 15006
HBONE_PORT = 15008
# ztunnel's own in-pod listeners: traffic addressed to them would loop (reference 1.6, 2.3, 2.6).
ZTUNNEL_PORTS = frozenset({OUTBOUND_PORT, INBOUND_PLAINTEXT_PORT, HBONE_PORT})
DEFAULT_TRUST_DOMAIN = "cluster.local"
DEFAULT_SERVICE_ACCOUNT = "default"

# RFC 1123 host names plus '_' (seen in ServiceEntry hosts); no ports, spaces or paths.
_HOSTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")


def canonical_ip(ip: IPAddress) -> IPAddress:
    """``ip``, with an IPv4-mapped IPv6 address (as dual-stack sockets report) turned into IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_ip(text: str) -> IPAddress:
    """Parse an IPv4 or IPv6 address; InvalidInput names the bad text."""
    try:
        return canonical_ip(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an IP address") from None


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class SocketAddr:
    """An IP address and a TCP port."""

    ip: IPAddress
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip", canonical_ip(self.ip))
        if not 0 <= self.port <= 65535:
            raise InvalidInput(f"port {self.port} is outside 0..65535")

    @classmethod
    def of(cls, ip: str | IPAddress, port: int) -> SocketAddr:
        return cls(ip=parse_ip(ip) if isinstance(ip, str) else ip, port=port)

    @classmethod
    def parse(cls, text: str) -> SocketAddr:
        """Parse ``a.b.c.d:port`` or ``[v6]:port``."""
        host, port = _split_host_port(text)
        bracketed = host.startswith("[") and host.endswith("]")
        try:
            ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
        except ValueError:
            raise InvalidInput(f"{text!r}: {host!r} is not an IP address") from None
        if bracketed != (ip.version == 6):
            raise InvalidInput(f"{text!r}: an IPv6 address, and only that, goes in brackets")
        return cls(ip=ip, port=port)

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if self.ip.version == 6 else f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPort:
    """A host name and a port: the HBONE authority form used through east-west gateways."""

    hostname: str
    port: int

    def __str__(self) -> str:
        return f"{self.hostname}:{self.port}"


HboneAddress: TypeAlias = SocketAddr | HostPort


def _split_host_port(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise InvalidInput(f"{text!r} has no port: expected host:port")
    if not port_text.isdigit() or len(port_text) > 5:
        raise InvalidInput(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidInput(f"{text!r}: port {port} is outside 1..65535")
    return host, port


def parse_authority(text: str) -> HboneAddress:
    """Parse a CONNECT ``:authority``: a socket address if it is one, else ``hostname:port``.

    Reference 1.5: try the whole authority as a socket address first; a missing port is an error.
    """
    try:
        return SocketAddr.parse(text)
    except InvalidInput:
        pass
    host, port = _split_host_port(text)
    if ":" in host or "[" in host or not _HOSTNAME.fullmatch(host):
        raise InvalidInput(f"authority {text!r} is neither ip:port nor hostname:port")
    return HostPort(hostname=host.lower(), port=port)


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NetworkAddress:
    """An IP address within a network; ``""`` is the default network."""

    network: str
    address: IPAddress

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", canonical_ip(self.address))

    def __str__(self) -> str:
        return f"{self.network}/{self.address}"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class NamespacedHostname:
    """A service's name on the wire: ``<namespace>/<hostname>``."""

    namespace: str
    hostname: str

    @classmethod
    def parse(cls, text: str) -> NamespacedHostname:
        namespace, sep, hostname = text.partition("/")
        if not sep or not namespace or not hostname or "/" in hostname:
            raise InvalidInput(f"{text!r} is not <namespace>/<hostname>")
        return cls(namespace=namespace, hostname=hostname)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.hostname}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayAddress:
    """Where a waypoint or network gateway is: a service host name (preferred) or an address."""

    destination: NamespacedHostname | NetworkAddress
    hbone_mtls_port: int = HBONE_PORT


class TunnelProtocol(enum.Enum):
    NONE = "NONE"  # not in the mesh: plaintext
    HBONE = "HBONE"
    LEGACY_ISTIO_MTLS = "LEGACY_ISTIO_MTLS"  # sidecar-era mTLS; ztunnel cannot originate it


class HealthStatus(enum.Enum):
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


class WorkloadType(enum.Enum):
    """The owner kind; its value is the word used in ``k8s.<type>.name`` baggage keys."""

    DEPLOYMENT = "deployment"
    CRONJOB = "cronjob"
    POD = "pod"
    JOB = "job"


class NetworkMode(enum.Enum):
    STANDARD = "STANDARD"
    HOST_NETWORK = "HOST_NETWORK"  # shares the node's IP: never looked up by address


class AppProtocol(enum.Enum):
    UNKNOWN = "UNKNOWN"
    HTTP11 = "HTTP11"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    TCP = "TCP"
    TLS = "TLS"


class ApplicationTunnelProtocol(enum.Enum):
    NONE = "NONE"
    PROXY = "PROXY"


class LocalityScope(enum.Enum):
    REGION = "REGION"
    ZONE = "ZONE"
    SUBZONE = "SUBZONE"
    NODE = "NODE"
    CLUSTER = "CLUSTER"
    NETWORK = "NETWORK"


class LoadBalancingMode(enum.Enum):
    STANDARD = "STANDARD"  # UNSPECIFIED_MODE on the wire: routing preferences are ignored
    STRICT = "STRICT"
    FAILOVER = "FAILOVER"
    PASSTHROUGH = "PASSTHROUGH"


class HealthPolicy(enum.Enum):
    ONLY_HEALTHY = "ONLY_HEALTHY"
    ALLOW_ALL = "ALLOW_ALL"


class IpFamilies(enum.Enum):
    AUTOMATIC = "AUTOMATIC"
    IPV4_ONLY = "IPV4_ONLY"
    IPV6_ONLY = "IPV6_ONLY"
    DUAL = "DUAL"

    def accepts(self, ip: IPAddress) -> bool:
        if self is IpFamilies.IPV4_ONLY:
            return ip.version == 4
        if self is IpFamilies.IPV6_ONLY:
            return ip.version == 6
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Port:
    """A service port and where it lands; ``target_port == 0`` means "per endpoint" (named port)."""

    service_port: int
    target_port: int
    app_protocol: AppProtocol = AppProtocol.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class Locality:
    region: str = ""
    zone: str = ""
    subzone: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationTunnel:
    """The workload terminates tunnels itself; ``port`` overrides the inbound target port."""

    protocol: ApplicationTunnelProtocol = ApplicationTunnelProtocol.NONE
    port: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancing:
    routing_preference: tuple[LocalityScope, ...] = ()
    mode: LoadBalancingMode = LoadBalancingMode.STANDARD
    health_policy: HealthPolicy = HealthPolicy.ONLY_HEALTHY


def _target_port(ports: tuple[Port, ...], service_port: int) -> int | None:
    for port in ports:
        if port.service_port == service_port and port.target_port > 0:
            return port.target_port
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """One pod (or WorkloadEntry) as the control plane describes it."""

    uid: str
    name: str
    namespace: str
    addresses: tuple[IPAddress, ...] = ()
    hostname: str = ""
    network: str = ""
    tunnel_protocol: TunnelProtocol = TunnelProtocol.NONE
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    waypoint: GatewayAddress | None = None
    network_gateway: GatewayAddress | None = None
    node: str = ""
    canonical_name: str = ""
    canonical_revision: str = ""
    workload_type: WorkloadType = WorkloadType.DEPLOYMENT
    workload_name: str = ""
    native_tunnel: bool = False
    application_tunnel: ApplicationTunnel | None = None
    # Each service this workload backs -> its ports, with named target ports resolved for it.
    services: Mapping[NamespacedHostname, tuple[Port, ...]] = field(
        default_factory=dict, hash=False
    )
    # Selector-scoped policies naming this workload; namespace and global ones apply implicitly.
    authorization_policies: tuple[str, ...] = ()
    status: HealthStatus = HealthStatus.HEALTHY
    cluster_id: str = ""
    locality: Locality = Locality()
    network_mode: NetworkMode = NetworkMode.STANDARD
    capacity: int = 1
    identity: Identity = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(canonical_ip(ip) for ip in self.addresses))
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))
        object.__setattr__(
            self,
            "identity",
            Identity(
                trust_domain=self.trust_domain,
                namespace=self.namespace,
                service_account=self.service_account,
            ),
        )

    def endpoint_target_port(self, service: NamespacedHostname, service_port: int) -> int | None:
        """The target port this workload maps ``service_port`` of ``service`` to, if it says."""
        ports = self.services.get(service)
        return None if ports is None else _target_port(ports, service_port)

    @property
    def in_mesh(self) -> bool:
        return self.tunnel_protocol is TunnelProtocol.HBONE


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A Kubernetes Service or ServiceEntry: VIPs, ports and how to reach its endpoints."""

    name: str
    namespace: str
    hostname: str
    addresses: tuple[NetworkAddress, ...] = ()
    ports: tuple[Port, ...] = ()
    # Extra identities a server of this service may present (reference 1.2 step 3).
    subject_alt_names: tuple[Identity, ...] = ()
    waypoint: GatewayAddress | None = None
    load_balancing: LoadBalancing | None = None
    ip_families: IpFamilies = IpFamilies.AUTOMATIC
    canonical: bool = False
    ingress_use_waypoint: bool = False
    key: NamespacedHostname = field(init=False, compare=False)

    def __post_init__(self) -> None:
        key = NamespacedHostname(namespace=self.namespace, hostname=self.hostname)
        object.__setattr__(self, "key", key)

    def port(self, service_port: int) -> Port | None:
        for port in self.ports:
            if port.service_port == service_port:
                return port
        return None

    @property
    def passthrough(self) -> bool:
        lb = self.load_balancing
        return lb is not None and lb.mode is LoadBalancingMode.PASSTHROUGH


Address: TypeAlias = Workload | Service
