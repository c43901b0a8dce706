"""Discovery protobufs (istio.workload.Address, istio.security.Authorization) to internal types.

Every problem raises ``InvalidResource`` naming the resource and the field path, so the xDS
client can NACK with a precise message and keep serving with what it had. ``addresses``
converts workloads and services, ``authorizations`` policies (a policy that cannot be parsed
is replaced by a fail-closed stand-in); ``address_update`` and ``authorization_update`` convert
the resources of one delta response at a time.
"""

from ambientmesh.ztunnel.xds_convert.addresses import (
    address_from_proto,
    address_update,
    service_from_proto,
    workload_from_proto,
)
from ambientmesh.ztunnel.xds_convert.authorizations import (
    authorization_from_proto,
    authorization_update,
    fail_closed_authorization,
)
from ambientmesh.ztunnel.xds_convert.fields import Converted, InvalidResource

__all__ = [
    "Converted",
    "InvalidResource",
    "address_from_proto",
    "address_update",
    "authorization_from_proto",
    "authorization_update",
    "fail_closed_authorization",
    "service_from_proto",
    "workload_from_proto",
]
