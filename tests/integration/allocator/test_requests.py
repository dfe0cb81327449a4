"""What a Service can ask for: specific IPs, a pool, sharing, and which class is ours."""

from __future__ import annotations

import pytest

from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration

SHARE = "exalb.io/allow-shared-ip"


def test_requested_ips_free_taken_and_outside_any_pool(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/29")
    start_allocator()
    cluster.service(namespace, "free", annotations={"exalb.io/loadBalancerIPs": "198.51.100.5"})
    assert cluster.wait_ips(namespace, "free") == ["198.51.100.5"]
    # MetalLB's annotation and the legacy spec field work too (migration without edits)
    cluster.service(namespace, "legacy", annotations={"metallb.io/loadBalancerIPs": "198.51.100.6"})
    assert cluster.wait_ips(namespace, "legacy") == ["198.51.100.6"]
    cluster.service(namespace, "spec", loadBalancerIP="198.51.100.7")
    assert cluster.wait_ips(namespace, "spec") == ["198.51.100.7"]

    cluster.service(namespace, "taken", annotations={"exalb.io/loadBalancerIPs": "198.51.100.5"})
    msg = cluster.wait_event(namespace, "taken", "AllocationFailed")
    assert f"requested IP 198.51.100.5 is held by {namespace}/free" in msg
    cluster.service(namespace, "outside", annotations={"exalb.io/loadBalancerIPs": "203.0.113.9"})
    msg = cluster.wait_event(namespace, "outside", "AllocationFailed")
    assert "requested IP 203.0.113.9 is not in any ready pool" in msg
    assert cluster.ingress(namespace, "taken") == [] and cluster.ingress(namespace, "outside") == []

    # once the holder goes, the waiting request is served
    cluster.core.delete_namespaced_service("free", namespace)
    assert cluster.wait_ips(namespace, "taken") == ["198.51.100.5"]


def test_pool_pinning_sharing_and_class_filtering(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("general", "198.51.100.0/30")
    cluster.pool("reserved", "203.0.113.0/30", autoAssign=False)
    start_allocator()
    cluster.service(namespace, "pinned", annotations={"exalb.io/address-pool": "reserved"})
    assert cluster.wait_ips(namespace, "pinned") == ["203.0.113.0"]
    cluster.service(namespace, "mlb", annotations={"metallb.io/address-pool": "reserved"})
    assert cluster.wait_ips(namespace, "mlb") == ["203.0.113.1"]
    cluster.service(namespace, "nopool", annotations={"exalb.io/address-pool": "missing"})
    assert "pool 'missing' does not exist" in cluster.wait_event(
        namespace, "nopool", "AllocationFailed"
    )

    # sharing: same key and disjoint ports share; an overlapping port does not
    cluster.service(namespace, "dns-udp", ports=(53,), annotations={SHARE: "dns"})
    ip = cluster.wait_ips(namespace, "dns-udp")
    cluster.service(namespace, "dns-tcp", ports=(5353,), annotations={SHARE: "dns"})
    assert cluster.wait_ips(namespace, "dns-tcp") == ip
    cluster.service(
        namespace,
        "dns-clash",
        ports=(53,),
        annotations={SHARE: "dns", "exalb.io/loadBalancerIPs": ip[0]},
    )
    assert "ports overlap (TCP/53)" in cluster.wait_event(
        namespace, "dns-clash", "AllocationFailed"
    )
    # a Local Service never shares with a Cluster one
    cluster.service(
        namespace,
        "local",
        ports=(54,),
        etp="Local",
        annotations={SHARE: "dns", "exalb.io/loadBalancerIPs": ip[0]},
    )
    assert "externalTrafficPolicy differs" in cluster.wait_event(
        namespace, "local", "AllocationFailed"
    )

    # with no --load-balancer-class, a Service of any class is someone else's
    cluster.service(namespace, "theirs", lb_class="example.com/other")
    cluster.service(namespace, "ours")
    assert cluster.wait_ips(namespace, "ours")
    wait_for("published", lambda: f"{namespace}.ours" in cluster.published(), 10)
    assert cluster.ingress(namespace, "theirs") == []
    assert f"{namespace}.theirs" not in cluster.published()
    assert cluster.events(namespace, "theirs") == []


def test_load_balancer_class_claims_only_that_class(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    """Beside MetalLB or Cilium: with a class set, class-less and other-class Services stay
    untouched (no IP, no Event, nothing published), and only that class is served."""
    cluster.pool("main", "198.51.100.0/29")
    start_allocator("alloc-a", True, "--load-balancer-class", "example.com/exalb")
    cluster.service(namespace, "classless")
    cluster.service(namespace, "other", lb_class="example.com/other")
    cluster.service(namespace, "mine", lb_class="example.com/exalb")
    assert cluster.wait_ips(namespace, "mine")
    # "mine" was created last and is published: the allocator has seen the other two
    wait_for("published", lambda: f"{namespace}.mine" in cluster.published(), 10)
    for name in ("classless", "other"):
        assert cluster.ingress(namespace, name) == []
        assert f"{namespace}.{name}" not in cluster.published()
        assert cluster.events(namespace, name) == []
        assert "exalb.io/ip-allocated-from-pool" not in cluster.annotations(namespace, name)


def test_pool_priority_and_selectors(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str, kube: object
) -> None:
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": {"env": "prod"}}})
    cluster.pool("general", "198.51.100.0/30")
    cluster.pool(
        "low", "203.0.113.0/30", serviceAllocation={"priority": 20, "namespaces": [namespace]}
    )
    cluster.pool(
        "high", "203.0.113.8/30", serviceAllocation={"priority": 10, "namespaces": [namespace]}
    )
    cluster.pool(
        "gold",
        "203.0.113.16/30",
        serviceAllocation={"priority": 5, "serviceSelectors": [{"matchLabels": {"tier": "gold"}}]},
    )
    cluster.pool(
        "prod",
        "203.0.113.24/30",
        serviceAllocation={
            "priority": 1,
            "namespaceSelectors": [{"matchLabels": {"env": "prod"}}],
            "serviceSelectors": [{"matchLabels": {"tier": "prod-only"}}],
        },
    )
    start_allocator()
    cluster.service(namespace, "plain")
    assert cluster.wait_ips(namespace, "plain") == ["203.0.113.8"]  # high beats low
    cluster.service(namespace, "goldie", labels={"tier": "gold"})
    assert cluster.wait_ips(namespace, "goldie") == ["203.0.113.16"]
    cluster.service(namespace, "prodsvc", labels={"tier": "prod-only"})
    assert cluster.wait_ips(namespace, "prodsvc") == ["203.0.113.24"]
