"""What the allocator creates at run time goes with its ServiceAccount (`helm uninstall`)."""

from __future__ import annotations

import pytest
from kubernetes import client

from exalb.assignments import LABEL
from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration

ACCOUNT = "exalb-allocator"


def _owned(cluster: Cluster) -> dict[str, list[str]]:
    """Each ConfigMap's and the Lease's ownerReferences, as ``kind/name/uid``."""
    ns = cluster.exalb_ns
    maps = cluster.core.list_namespaced_config_map(ns, label_selector=f"{LABEL}=true").items
    leases = client.CoordinationV1Api(cluster.api).list_namespaced_lease(ns).items
    return {
        f"{type(o).__name__}/{o.metadata.name}": [
            f"{r.kind}/{r.name}/{r.uid}" for r in o.metadata.owner_references or []
        ]
        for o in [*maps, *leases]
    }


def test_the_lease_and_assignments_are_owned_by_the_allocators_account_and_go_with_it(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/30")
    alloc = start_allocator("alloc-a", True, f"--owner-service-account={ACCOUNT}")
    cluster.service(namespace, "web")
    cluster.wait_ips(namespace, "web")
    wait_for("published entry", lambda: f"{namespace}.web" in cluster.published(), 10)
    uid = cluster.core.read_namespaced_service_account(ACCOUNT, cluster.exalb_ns).metadata.uid
    owned = _owned(cluster)
    assert set(owned) == {"V1ConfigMap/exalb-assignments-0", "V1Lease/exalb-allocator"}
    assert all(refs == [f"ServiceAccount/{ACCOUNT}/{uid}"] for refs in owned.values()), owned

    alloc.proc.stop()
    cluster.core.delete_namespaced_service_account(ACCOUNT, cluster.exalb_ns)
    wait_for("the garbage collector's deletes", lambda: not _owned(cluster), 30, interval=0.2)
    # The Service keeps its IP: the contract is derived state, rebuilt by the next allocator.
    assert cluster.ingress(namespace, "web") == ["198.51.100.0"]


def test_without_an_owner_nothing_is_owned(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("main", "198.51.100.0/30")
    start_allocator()
    cluster.service(namespace, "web")
    cluster.wait_ips(namespace, "web")
    wait_for("published entry", lambda: f"{namespace}.web" in cluster.published(), 10)
    owned = _owned(cluster)
    assert owned and all(refs == [] for refs in owned.values()), owned
