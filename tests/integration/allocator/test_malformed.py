"""Malformed input gets a precise Event; nothing else is disturbed and nothing crashes."""

from __future__ import annotations

import pytest

from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration


def test_malformed_annotations_are_reported_and_contained(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/29")
    alloc = start_allocator()
    cluster.service(namespace, "good")
    good_ip = cluster.wait_ips(namespace, "good")

    cluster.service(namespace, "bad-ip", annotations={"exalb.io/loadBalancerIPs": "198.51.100.999"})
    assert "is not an IP address" in cluster.wait_event(namespace, "bad-ip", "AllocationFailed")
    cluster.service(
        namespace,
        "both",
        annotations={"exalb.io/loadBalancerIPs": "198.51.100.3"},
        loadBalancerIP="198.51.100.4",
    )
    assert "both exalb.io/loadBalancerIPs and spec.loadBalancerIP" in cluster.wait_event(
        namespace, "both", "AllocationFailed"
    )

    # breaking the annotation of an allocated Service keeps its IP and says why
    cluster.core.patch_namespaced_service(
        "good", namespace, {"metadata": {"annotations": {"exalb.io/loadBalancerIPs": "nonsense"}}}
    )
    msg = cluster.wait_event(namespace, "good", "InvalidAnnotation")
    assert "'nonsense' is not an IP address" in msg and f"keeping {good_ip[0]}" in msg
    assert cluster.ingress(namespace, "good") == good_ip

    # a Service that arrives later is still served: the allocator did not crash
    cluster.service(namespace, "after")
    assert cluster.wait_ips(namespace, "after")
    assert alloc.proc.alive()
    wait_for(
        "good still published",
        lambda: cluster.published()[f"{namespace}.good"].ips == tuple(good_ip),
        10,
    )
