"""Pool lifecycle: exhaustion, shrinking, removal, overlap and invalid specs."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration


def test_exhaustion_then_freeing(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("tiny", "198.51.100.8/31")
    alloc = start_allocator()
    cluster.service(namespace, "a")
    cluster.wait_ips(namespace, "a")
    cluster.service(namespace, "b")
    cluster.wait_ips(namespace, "b")
    cluster.service(namespace, "c")
    msg = cluster.wait_event(namespace, "c", "AllocationFailed")
    assert "no available IPs in pool(s) tiny" in msg
    wait_for("available 0", lambda: cluster.pool_status("tiny").get("availableIPv4") == 0, 10)
    assert alloc.metric("exalb_allocator_allocation_failures_total", reason="PoolExhausted") == 1.0
    assert alloc.metric("exalb_allocator_services", state="pending") == 1.0
    cluster.core.delete_namespaced_service("a", namespace)
    assert cluster.wait_ips(namespace, "c") == ["198.51.100.8"]


def test_shrink_and_removal_reallocate_with_events(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("p", "198.51.100.0/29")
    cluster.pool("spare", "203.0.113.0/30")
    start_allocator()
    for name in ("s0", "s1", "s2", "s3", "s4", "s5"):
        cluster.service(namespace, name)
        cluster.wait_ips(namespace, name)
    before = {n: cluster.ingress(namespace, n) for n in ("s0", "s1", "s2", "s3", "s4", "s5")}
    # spare is sorted after p by name, so everything went to p first
    assert all(ips[0].startswith("198.51.100.") for ips in before.values())

    cluster.patch_pool("p", {"addresses": ["198.51.100.0/30"]})  # drops .4-.7
    for n, ips in before.items():
        last = int(ips[0].rsplit(".", 1)[1])
        if last >= 4:
            msg = cluster.wait_event(namespace, n, "IPReallocated")
            assert f"{ips[0]} is no longer in any pool" in msg
            new = cluster.ingress(namespace, n)
            assert new[0].startswith("203.0.113.")
    for n, ips in before.items():
        if int(ips[0].rsplit(".", 1)[1]) < 4:
            assert cluster.ingress(namespace, n) == ips  # untouched

    # removing a pool moves its Services to what is left, or leaves them pending with a reason
    cluster.custom.delete_namespaced_custom_object(
        "exalb.io", "v1alpha1", cluster.exalb_ns, "vippools", "spare"
    )
    moved = [n for n, ips in before.items() if int(ips[0].rsplit(".", 1)[1]) >= 4]
    for n in moved:
        cluster.wait_event(namespace, n, "AllocationFailed", "released")
        assert cluster.ingress(namespace, n) == []


def test_overlapping_and_invalid_pools(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("old", "198.51.100.0/30")
    start_allocator()
    cluster.service(namespace, "a")
    assert cluster.wait_ips(namespace, "a") == ["198.51.100.0"]

    cluster.pool("new", "198.51.100.2-198.51.100.9")
    wait_for(
        "Overlapping condition",
        lambda: (cluster.condition("new", "Overlapping") or {}).get("status") == "True",
        10,
    )
    cond = cluster.condition("new", "Overlapping") or {}
    assert "overlap" in cond["message"] and "'old'" in cond["message"]
    assert (cluster.condition("new", "Ready") or {})["status"] == "False"
    assert (cluster.condition("old", "Ready") or {})["status"] == "True"
    cluster.service(namespace, "wants-new", annotations={"exalb.io/address-pool": "new"})
    assert "pool 'new' is Overlapping" in cluster.wait_event(
        namespace, "wants-new", "AllocationFailed"
    )

    # the schema rejects garbage before it reaches us, with a precise message
    with pytest.raises(client.ApiException) as bad:
        cluster.pool("garbage", "not-an-address")
    assert bad.value.status == 422
    assert "each address must be a CIDR" in json.loads(bad.value.body)["message"]

    # what only exalb can check (aggregation wider than the pool) becomes a condition
    cluster.pool("wide", "203.0.113.0/28", bgpAdvertisements=[{"aggregationLength": 24}])
    wait_for(
        "Invalid condition",
        lambda: (cluster.condition("wide", "Ready") or {}).get("reason") == "Invalid",
        10,
    )
    assert "shorter than the pool" in (cluster.condition("wide", "Ready") or {})["message"]
    # and none of this disturbed the allocated Service
    assert cluster.ingress(namespace, "a") == ["198.51.100.0"]
