"""The control-plane process end to end: API in, discovery out over mTLS on its unix socket."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from ambientmesh.apiserver.address import ServerAddress
from ambientmesh.apiserver.async_client import AsyncApiClient
from ambientmesh.clock import SystemClock
from ambientmesh.controlplane.app import ControlPlaneSettings, run_control_plane
from ambientmesh.errors import NotFound
from ambientmesh.identity.ca import CaSettings, CertificateAuthority
from ambientmesh.proto.authorization_pb2 import Authorization
from ambientmesh.proto.discovery_common_pb2 import Node
from ambientmesh.proto.workload_pb2 import Address
from ambientmesh.resources import kinds
from ambientmesh.testing.clock import FakeClock
from ambientmesh.xds.client import KEEPALIVE_OPTIONS, DeltaDiscoveryClient
from ambientmesh.xds.session import Update, Watch
from ambientmesh.xds.types import ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL

WAIT = 20.0
UID = "Kubernetes//Pod/shop/web-0"


class Proxy:
    def __init__(self) -> None:
        self.addresses: dict[str, Address] = {}
        self.policies: dict[str, Authorization] = {}
        self.changed = asyncio.Event()

    def on_addresses(self, updates: Sequence[Update[Address]], removed: Sequence[str]) -> None:
        self.addresses.update({u.name: u.message for u in updates})
        for name in removed:
            self.addresses.pop(name, None)
        self.changed.set()

    def on_policies(self, updates: Sequence[Update[Authorization]], removed: Sequence[str]) -> None:
        self.policies.update({u.name: u.message for u in updates})
        for name in removed:
            self.policies.pop(name, None)
        self.changed.set()

    async def wait_for(self, condition: Any) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlaneSettings]:
    settings = ControlPlaneSettings(state_dir=tmp_path / "state", run_dir=tmp_path / "run")
    stop = asyncio.Event()
    ready = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(
            run_control_plane(settings, clock=SystemClock(), stop=stop, on_ready=ready.set)
        )
        async with asyncio.timeout(WAIT):
            await ready.wait()
        try:
            yield settings
        finally:
            stop.set()


async def wait_until(check: Any) -> Any:
    async with asyncio.timeout(WAIT):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)  # polling the API server: no event to wait on


async def test_pod_reaches_a_ztunnel_and_waypoints_get_resources(
    control_plane: ControlPlaneSettings,
) -> None:
    settings = control_plane
    ca = CertificateAuthority.open(settings.state_dir, settings=CaSettings())
    node = ca.issue_node_credential("node-a")
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.roots_pem, private_key=node.key_pem, certificate_chain=node.chain_pem
    )
    options = (*KEEPALIVE_OPTIONS, ("grpc.ssl_target_name_override", "istiod.istio-system.svc"))
    proxy = Proxy()
    client = DeltaDiscoveryClient(
        connect=lambda: grpc.aio.secure_channel(
            f"unix:{settings.xds_socket}", creds, options=options
        ),
        node=Node(id="ztunnel~node-a"),
        watches=[
            Watch(type_url=ADDRESS_TYPE_URL, message_type=Address, apply=proxy.on_addresses),
            Watch(
                type_url=AUTHORIZATION_TYPE_URL, message_type=Authorization, apply=proxy.on_policies
            ),
        ],
        clock=FakeClock(autojump=True),
        rng=random.Random(1),
    )
    api = AsyncApiClient(ServerAddress(socket=settings.api_socket))
    async with asyncio.TaskGroup() as group:
        task = group.create_task(client.run())
        try:
            await api.apply(
                [
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": "shop",
                            "labels": {"istio.io/dataplane-mode": "ambient"},
                        },
                    },
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": "web-0",
                            "namespace": "shop",
                            "labels": {"app": "web"},
                        },
                        "spec": {
                            "nodeName": "node-a",
                            "containers": [{"name": "web", "image": "echo"}],
                        },
                    },
                    {
                        "apiVersion": "security.istio.io/v1",
                        "kind": "AuthorizationPolicy",
                        "metadata": {"name": "allow-nothing", "namespace": "shop"},
                        "spec": {},
                    },
                ]
            )
            pod = await api.get(kinds.lookup("v1", "Pod"), "web-0", "shop")
            pod["status"] = {
                "phase": "Running",
                "podIP": "10.244.0.5",
                "podIPs": [{"ip": "10.244.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            await api.update_status(pod)
            await proxy.wait_for(
                lambda: UID in proxy.addresses and "shop/allow-nothing" in proxy.policies
            )
            workload = proxy.addresses[UID].workload
            assert list(workload.addresses) == [bytes([10, 244, 0, 5])]
            assert workload.tunnel_protocol == 1  # HBONE: the namespace is enrolled

            dump = await api.request(
                "GET", "/apis/ambientmesh.io/v1/configdump", params={"node": "node-a"}
            )
            assert dump["proxy"]["connected"]
            assert [w["uid"] for w in dump["workloads"]] == [UID]

            policy = kinds.lookup("security.istio.io/v1", "AuthorizationPolicy")

            async def accepted() -> bool:
                obj = await api.get(policy, "allow-nothing", "shop")
                conditions = (obj.get("status") or {}).get("conditions") or []
                return any(
                    c["type"] == "ZtunnelAccepted" and c["status"] == "True" for c in conditions
                )

            await wait_until(accepted)

            await api.apply(
                [
                    {
                        "apiVersion": "gateway.networking.k8s.io/v1",
                        "kind": "Gateway",
                        "metadata": {"name": "waypoint", "namespace": "shop"},
                        "spec": {
                            "gatewayClassName": "istio-waypoint",
                            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
                        },
                    }
                ]
            )
            deployment = kinds.lookup("apps/v1", "Deployment")

            async def rendered() -> dict[str, Any] | None:
                try:
                    return await api.get(deployment, "waypoint", "shop")
                except Exception:
                    return None

            made = await wait_until(rendered)
            assert made["metadata"]["ownerReferences"][0]["kind"] == "Gateway"
            template = made["spec"]["template"]["metadata"]["labels"]
            assert template["istio.io/dataplane-mode"] == "none"
            service = await api.get(kinds.lookup("v1", "Service"), "waypoint", "shop")
            assert 15008 in [p["port"] for p in service["spec"]["ports"]]
            await api.get(kinds.lookup("v1", "ServiceAccount"), "waypoint", "shop")

            # As istiod: deleting the Gateway removes what was made for it (ownerReferences).
            await api.delete(
                kinds.lookup("gateway.networking.k8s.io/v1", "Gateway"), "waypoint", "shop"
            )
            for kind in (
                deployment,
                kinds.lookup("v1", "Service"),
                kinds.lookup("v1", "ServiceAccount"),
            ):
                with pytest.raises(NotFound):
                    await api.get(kind, "waypoint", "shop")
        finally:
            task.cancel()
            await api.aclose()
