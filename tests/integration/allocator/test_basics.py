"""Allocate, publish, release and reuse: against the real apiserver with the chart's RBAC."""

from __future__ import annotations

import pytest

from exalb.assignments.slicescope import SCOPE_ANNOTATION, SERVICE_LABEL, SLICE_SELECTOR
from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration


def test_allocate_publish_release_and_reuse(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/30", bgpAdvertisements=[{"communities": ["65000:100"]}])
    alloc = start_allocator()
    cluster.service(namespace, "web", etp="Local")
    assert cluster.wait_ips(namespace, "web") == ["198.51.100.0"]
    assert cluster.annotations(namespace, "web")["exalb.io/ip-allocated-from-pool"] == "main"
    assert "Assigned IP 198.51.100.0 from pool main" in cluster.wait_event(
        namespace, "web", "IPAllocated"
    )
    wait_for("published entry", lambda: f"{namespace}.web" in cluster.published(), 10)
    entry = cluster.published()[f"{namespace}.web"]
    assert entry.ips == ("198.51.100.0",) and entry.pool == "main"
    assert entry.traffic_policy == "Local"
    assert entry.advertisements[0].communities == ("65000:100",)
    assert entry.uid == cluster.core.read_namespaced_service("web", namespace).metadata.uid

    cluster.service(namespace, "api")
    assert cluster.wait_ips(namespace, "api") == ["198.51.100.1"]
    wait_for("pool status", lambda: cluster.pool_status("main").get("assignedIPv4") == 2, 10)
    st = cluster.pool_status("main")
    assert (st["capacityIPv4"], st["availableIPv4"]) == (4, 2)
    assert cluster.condition("main", "Ready")["status"] == "True"  # type: ignore[index]

    # delete: the entry goes, and the freed IP goes to the next Service
    cluster.core.delete_namespaced_service("web", namespace)
    wait_for("entry removed", lambda: f"{namespace}.web" not in cluster.published(), 10)
    cluster.service(namespace, "next")
    assert cluster.wait_ips(namespace, "next") == ["198.51.100.0"]

    # changing type releases the IP
    cluster.core.patch_namespaced_service("api", namespace, {"spec": {"type": "ClusterIP"}})
    wait_for("api released", lambda: f"{namespace}.api" not in cluster.published(), 10)
    wait_for(
        "pool annotation removed",
        lambda: "exalb.io/ip-allocated-from-pool" not in cluster.annotations(namespace, "api"),
        10,
    )
    assert cluster.ingress(namespace, "api") == []
    assert alloc.is_leader()
    assert alloc.metric("exalb_allocator_pool_in_use", pool="main", family="IPv4") == 1.0


def test_assigned_services_carry_the_label_that_scopes_the_announcers(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    """``exalb.io/assigned`` follows the assignment: set, restored after an edit, removed."""

    def label() -> str | None:
        md = cluster.core.read_namespaced_service("web", namespace).metadata
        return (md.labels or {}).get(SERVICE_LABEL)

    cluster.pool("main", "198.51.100.0/30")
    start_allocator()
    cluster.service(namespace, "web", labels={"app": "web"})
    cluster.wait_ips(namespace, "web")
    wait_for("the Service labelled", lambda: label() == "true", 10)
    for cm in cluster.core.list_namespaced_config_map(namespace).items:
        if (cm.metadata.labels or {}).get("exalb.io/assignments") == "true":
            assert cm.metadata.annotations[SCOPE_ANNOTATION] == SLICE_SELECTOR

    # Someone's edit drops it (kubectl apply of a manifest without it): written again.
    cluster.core.patch_namespaced_service(
        "web", namespace, {"metadata": {"labels": {SERVICE_LABEL: None}}}
    )
    wait_for("the label restored", lambda: label() == "true", 10)
    assert cluster.core.read_namespaced_service("web", namespace).metadata.labels["app"] == "web"

    cluster.core.patch_namespaced_service("web", namespace, {"spec": {"type": "ClusterIP"}})
    wait_for("the label removed on release", lambda: label() is None, 10)
