"""Admission: pod defaults and cluster IP allocation, as pure functions and inside the store."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ambientmesh.errors import ValidationFailed
from ambientmesh.resources import kinds
from ambientmesh.store.admission import (
    DEFAULT_ADMISSION,
    AdmissionRequest,
    IPNetwork,
    pod_defaults,
    service_cluster_ip,
)
from ambientmesh.store.store import Store, StoreConfig
from ambientmesh.testing.clock import FakeClock
from tests.unit.store.builders import pod, service

POD = kinds.lookup("v1", "Pod")
SERVICE = kinds.lookup("v1", "Service")


@dataclass
class Facts:
    service_cidr: IPNetwork = field(default_factory=lambda: ipaddress.ip_network("10.96.0.0/29"))
    dns_service_ip: str = "10.96.0.2"
    random: random.Random = field(default_factory=lambda: random.Random(1))
    used: set[str] = field(default_factory=set)

    def cluster_ip_in_use(self, ip: str) -> bool:
        return ip in self.used


def admit(obj: dict[str, Any], facts: Facts, old: dict[str, Any] | None = None) -> dict[str, Any]:
    info = kinds.lookup(obj["apiVersion"], obj["kind"])
    request = AdmissionRequest(
        operation="UPDATE" if old else "CREATE", kind=info, obj=obj, old=old, context=facts
    )
    return dict(service_cluster_ip(request))


def test_pod_defaults_service_account_and_phase() -> None:
    request = AdmissionRequest(
        operation="CREATE", kind=POD, obj=pod("web"), old=None, context=Facts()
    )
    admitted = pod_defaults(request)
    assert admitted["spec"]["serviceAccountName"] == "default"
    assert admitted["status"] == {"phase": "Pending"}
    assert "serviceAccountName" not in request.obj["spec"]  # the argument is not mutated


def test_pod_keeps_its_binding_when_an_update_leaves_node_name_out() -> None:
    old = {**pod("web"), "spec": {**pod("web")["spec"], "nodeName": "node-1"}}
    request = AdmissionRequest(
        operation="UPDATE", kind=POD, obj=pod("web"), old=old, context=Facts()
    )
    assert pod_defaults(request)["spec"]["nodeName"] == "node-1"


def test_allocation_never_hands_out_network_broadcast_or_dns_addresses() -> None:
    facts = Facts()
    for index in range(5):
        facts.used.add(admit(service(f"s{index}"), facts)["spec"]["clusterIP"])
    # /29 has 8 addresses: .0 network, .7 broadcast, .2 reserved for DNS -> 5 usable.
    assert facts.used == {"10.96.0.1", "10.96.0.3", "10.96.0.4", "10.96.0.5", "10.96.0.6"}
    with pytest.raises(ValidationFailed, match="no free address"):
        admit(service("one-too-many"), facts)


def test_the_dns_address_goes_only_to_a_service_that_asks_for_it() -> None:
    admitted = admit(service("kube-dns", clusterIP="10.96.0.2"), Facts())
    assert admitted["spec"]["clusterIPs"] == ["10.96.0.2"]


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ("10.97.0.1", "not in the valid range; the range of valid IPs is 10.96.0.0/29"),
        ("10.96.0.0", "not in the valid range"),
        ("banana", "must be a valid IP address"),
        ("10.96.0.3", "already allocated"),
    ],
)
def test_a_requested_ip_is_checked(requested: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        admit(service("web", clusterIP=requested), Facts(used={"10.96.0.3"}))


def test_headless_and_external_name_services_get_no_address() -> None:
    headless = admit(service("h", clusterIP="None"), Facts())
    assert headless["spec"]["clusterIPs"] == ["None"]
    external = admit(service("e", type="ExternalName", externalName="example.com"), Facts())
    assert "clusterIP" not in external["spec"]


def test_cluster_ip_is_immutable_but_may_be_left_out_on_update() -> None:
    old = admit(service("web"), Facts())
    kept = admit(service("web"), Facts(), old=old)
    assert kept["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    other = "10.96.0.6" if old["spec"]["clusterIP"] != "10.96.0.6" else "10.96.0.5"
    with pytest.raises(ValidationFailed, match="field is immutable"):
        admit(service("web", clusterIP=other), Facts(), old=old)


def test_store_releases_an_address_when_its_service_goes(tmp_path: Path) -> None:
    config = StoreConfig(service_cidr="10.96.0.0/30", dns_service_ip="10.96.0.2")
    with Store(tmp_path / "s.db", clock=FakeClock(), config=config) as store:
        first = store.create(service("first"))
        assert first["spec"]["clusterIP"] == "10.96.0.1"  # the only usable address
        with pytest.raises(ValidationFailed, match=r"Service default/second: spec\.clusterIP"):
            store.create(service("second"))
        store.delete(SERVICE, "first")
        assert store.create(service("second"))["spec"]["clusterIP"] == "10.96.0.1"


def test_composition_root_can_add_admission(tmp_path: Path) -> None:
    def label_everything(request: AdmissionRequest) -> dict[str, Any]:
        metadata = {**request.obj["metadata"], "labels": {"admitted": "yes"}}
        return {**request.obj, "metadata": metadata}

    admission = (*DEFAULT_ADMISSION, label_everything)
    with Store(tmp_path / "s.db", clock=FakeClock(), admission=admission) as store:
        assert store.create(pod("web"))["metadata"]["labels"] == {"admitted": "yes"}
