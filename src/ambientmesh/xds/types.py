"""Names and small values shared by the discovery server and client."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
METHOD = "DeltaAggregatedResources"
METHOD_PATH = f"/{SERVICE}/{METHOD}"

TYPE_PREFIX = "type.googleapis.com/"
ADDRESS_TYPE_URL = TYPE_PREFIX + "istio.workload.Address"
AUTHORIZATION_TYPE_URL = TYPE_PREFIX + "istio.security.Authorization"

WILDCARD = "*"


def type_url_of(message: type[Message] | Message) -> str:
    """The type URL an ``Any`` carries for this message type."""
    return TYPE_PREFIX + message.DESCRIPTOR.full_name


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """A discovery client whose credential the server verified.

    ``node`` is the node its credential names (``spiffe://<td>/ambientmesh/node/<node>``);
    ``identity`` is the full URI, kept for logs.
    """

    node: str
    identity: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One resource as the server holds it: its name, content version and the encoded
    ``envoy.service.discovery.v3.Resource`` message, ready to be spliced into responses."""

    name: str
    version: str
    encoded: bytes
