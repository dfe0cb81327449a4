"""``exalbctl migrate metallb`` on the real apiserver: exalb's CRDs accept what it writes,
it reads MetalLB's objects from a cluster as from files, and MetalLB's Services keep their IPs
when exalb's allocator takes over with the migrated pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from exalbctl.core.migrate import migrate
from testbed.manifests import apply, load
from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator
from tests.integration.exalbctl.conftest import FIXTURES, UNIT_FIXTURES, Ctl

pytestmark = pytest.mark.integration
GROUP, VERSION = "exalb.io", "v1alpha1"
PLURALS = {"VIPPool": "vippools", "BGPPeer": "bgppeers"}
# What MetalLB serves today (fixtures/metallb-crds.yaml): v1beta1 BGPPeers only in files.
SERVED = {
    ("metallb.io/v1beta1", "IPAddressPool"),
    ("metallb.io/v1beta2", "BGPPeer"),
    ("metallb.io/v1beta1", "BGPAdvertisement"),
    ("metallb.io/v1beta1", "Community"),
    ("metallb.io/v1beta1", "BFDProfile"),
}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def create(api: client.ApiClient, namespace: str, obj: dict[str, Any], dry_run: bool) -> None:
    """Create as ``kubectl apply --server-side --dry-run=server`` would check it: strict fields."""
    custom: Any = client.CustomObjectsApi(api)
    body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURALS[obj["kind"]],
        body,
        dry_run="All" if dry_run else None,
        field_validation="Strict",
    )


@pytest.mark.parametrize("case", sorted(p.stem for p in (UNIT_FIXTURES / "exalb").glob("*.yaml")))
def test_migrated_objects_pass_exalbs_crds(
    kube: client.ApiClient, crds: list[str], namespace: str, case: str
) -> None:
    objects = documents(UNIT_FIXTURES / "exalb" / f"{case}.yaml")
    assert objects
    for obj in objects:
        create(kube, namespace, obj, dry_run=True)  # raises ApiException (422) if invalid


def test_reads_metallb_objects_from_the_cluster(
    kube: client.ApiClient, crds: list[str], namespace: str, ctl: Ctl
) -> None:
    apply(kube, load(FIXTURES / "metallb-crds.yaml"))
    objects = [
        {**d, "metadata": {**d["metadata"], "namespace": namespace}}
        for case in ("advertisements", "peers", "bgp-simple")
        for d in documents(UNIT_FIXTURES / "metallb" / f"{case}.yaml")
        if (d["apiVersion"], d["kind"]) in SERVED
    ]
    wait_for("MetalLB kinds served", lambda: _served(kube), 30, interval=0.2)
    apply(kube, objects)

    got = ctl("migrate", "metallb", "--metallb-namespace", namespace, "-o", "json")
    assert got.code == 0, got.err
    assert got.json()["items"] == list(migrate(objects, "exalb-system").objects)
    assert "LOST  BGPPeer/in-vrf" in got.err
    strict = ctl("migrate", "metallb", "--metallb-namespace", namespace, "--strict")
    assert strict.code == 1


def _served(api: client.ApiClient) -> bool:
    custom: Any = client.CustomObjectsApi(api)
    try:
        for plural, version in (
            ("ipaddresspools", "v1beta1"),
            ("bgppeers", "v1beta2"),
            ("bgpadvertisements", "v1beta1"),
            ("communities", "v1beta1"),
            ("bfdprofiles", "v1beta1"),
        ):
            custom.list_cluster_custom_object("metallb.io", version, plural)
    except client.ApiException:
        return False
    return True


# --- takeover ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leftover:
    """A Service as MetalLB leaves it: what its user asked for, and what MetalLB wrote."""

    name: str
    ip: str  # status.loadBalancer.ingress, written by MetalLB
    pool: str  # <prefix>ip-allocated-from-pool, written by MetalLB
    asked: dict[str, str] = field(default_factory=dict)  # the user's annotations
    port: tuple[int, str] = (80, "TCP")
    prefix: str = "metallb.io/"

    def annotations(self) -> dict[str, str]:
        return {**self.asked, f"{self.prefix}ip-allocated-from-pool": self.pool}


SHARED = {"metallb.io/allow-shared-ip": "dns"}
LEFTOVERS = [
    Leftover("web", "198.51.100.7", "prod"),  # auto-assigned, not the lowest free address
    Leftover("api", "198.51.100.3", "prod", {"metallb.io/loadBalancerIPs": "198.51.100.3"}),
    Leftover("db", "203.0.113.5", "reserved", {"metallb.io/address-pool": "reserved"}),
    Leftover("dns-tcp", "198.51.100.9", "prod", SHARED, (53, "TCP")),
    Leftover("dns-udp", "198.51.100.9", "prod", SHARED, (53, "UDP")),
    Leftover(
        "legacy",
        "198.51.100.12",
        "prod",
        {"metallb.universe.tf/address-pool": "prod"},
        prefix="metallb.universe.tf/",
    ),
]


def leave_metallb_service(core: client.CoreV1Api, ns: str, svc: Leftover) -> None:
    port, protocol = svc.port
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": svc.name, "annotations": svc.annotations()},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": svc.name.partition("-")[0]},
                "ports": [{"name": f"p{port}", "port": port, "protocol": protocol}],
            },
        },
    )
    core.patch_namespaced_service_status(
        svc.name, ns, {"status": {"loadBalancer": {"ingress": [{"ip": svc.ip, "ipMode": "VIP"}]}}}
    )


def test_metallb_services_keep_their_ips_when_exalb_takes_over(
    kube: client.ApiClient,
    cluster: Cluster,
    exalb_ns: str,
    start_allocator: StartAllocator,
    ctl: Ctl,
    tmp_path: Path,
) -> None:
    # exalbctl writes the migrated objects; they are applied for real, as an operator would.
    migrated = ctl.script(
        "migrate",
        "metallb",
        "-f",
        str(FIXTURES / "takeover.yaml"),
        "-n",
        exalb_ns,
        "--output-dir",
        str(tmp_path / "out"),
        "--strict",
    )
    assert migrated.code == 0, migrated.err
    for path in sorted((tmp_path / "out").glob("*.yaml")):
        create(kube, exalb_ns, yaml.safe_load(path.read_text()), dry_run=False)

    for svc in LEFTOVERS:
        leave_metallb_service(cluster.core, exalb_ns, svc)
    start_allocator()

    def taken_over() -> bool:
        return all(
            cluster.annotations(exalb_ns, s.name).get("exalb.io/ip-allocated-from-pool") == s.pool
            for s in LEFTOVERS
        )

    wait_for(
        "exalb to take every Service over",
        taken_over,
        30,
        on_timeout=lambda: str({s.name: cluster.events(exalb_ns, s.name) for s in LEFTOVERS}),
    )
    for svc in LEFTOVERS:
        assert cluster.ingress(exalb_ns, svc.name) == [svc.ip], svc
        reasons = {r for r, _ in cluster.events(exalb_ns, svc.name)}
        assert not reasons & {"IPReallocated", "AllocationFailed", "InvalidAnnotation"}, svc

    # The migrated advertisement (MetalLB's community) is what the announcers are told.
    wait_for("published", lambda: len(cluster.published()) >= len(LEFTOVERS), 15)
    for svc in LEFTOVERS:
        entry = cluster.published()[f"{exalb_ns}.{svc.name}"]
        assert entry.ips == (svc.ip,) and entry.pool == svc.pool
        assert [a.communities for a in entry.advertisements] == [("64512:100",)]

    # The allocator is live: a new Service gets the lowest address nobody holds.
    cluster.service(exalb_ns, "fresh")
    assert cluster.wait_ips(exalb_ns, "fresh") == ["198.51.100.0"]
    wait_for("pool counters", lambda: cluster.pool_status("prod").get("assignedIPv4") == 5, 15)

    status = ctl("status", "-n", exalb_ns, "-o", "json")
    assert status.code == 0, status.out + status.err
    data = status.json()
    mine = {
        s["name"]: (s["ips"], s["pool"]) for s in data["services"] if s["namespace"] == exalb_ns
    }
    assert mine == {s.name: ([s.ip], s.pool) for s in LEFTOVERS} | {
        "fresh": (["198.51.100.0"], "prod")
    }
    use = {p["name"]: p["use"]["IPv4"] for p in data["pools"]}
    assert use == {
        "prod": {"capacity": 16, "assigned": 5, "available": 11},
        "reserved": {"capacity": 8, "assigned": 1, "available": 7},
    }
