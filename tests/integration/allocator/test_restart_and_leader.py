"""The Service status is the truth across restarts, and exactly one allocator writes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator, log_lines

pytestmark = pytest.mark.integration

FAST_LEASE = ("--lease-duration=4", "--renew-deadline=3", "--retry-period=0.5")


def all_ips(cluster: Cluster, ns: str) -> dict[str, list[str]]:
    out = {}
    for s in cluster.core.list_namespaced_service(ns).items:
        lb = s.status.load_balancer if s.status else None
        out[s.metadata.name] = [i.ip for i in (lb.ingress or [])] if lb else []
    return out


def no_duplicates(ips: dict[str, list[str]]) -> None:
    counts = Counter(ip for v in ips.values() for ip in v)
    assert [ip for ip, n in counts.items() if n > 1] == []


def test_restart_with_200_services_changes_no_ip(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("big", "198.51.100.0/24")
    first = start_allocator("first", True, *FAST_LEASE)
    for i in range(200):
        cluster.service(namespace, f"s{i:03d}")
    wait_for("200 allocated", lambda: all(all_ips(cluster, namespace).values()), 60)
    before = all_ips(cluster, namespace)
    no_duplicates(before)

    first.proc.kill()  # a crash: no lease release, no goodbye
    # while it is down: some Services go (freeing low IPs) and new ones arrive
    for i in range(0, 20, 2):
        cluster.core.delete_namespaced_service(f"s{i:03d}", namespace)
    for i in range(20):
        cluster.service(namespace, f"new{i:02d}")

    second = start_allocator("second", True, *FAST_LEASE)
    wait_for("new ones allocated", lambda: all(all_ips(cluster, namespace).values()), 60)
    after = all_ips(cluster, namespace)
    no_duplicates(after)
    kept = {n: ips for n, ips in before.items() if n in after}
    assert len(kept) == 190
    assert {n: after[n] for n in kept} == kept  # not one surviving IP moved
    assert second.is_leader()


def test_two_allocators_one_writer_failover_and_no_duplicates(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str
) -> None:
    cluster.pool("big", "198.51.100.0/24", "203.0.113.0/24")
    a = start_allocator("a", True, *FAST_LEASE)
    wait_for("a leads", a.is_leader, 10)
    b = start_allocator("b", True, *FAST_LEASE)
    for i in range(50):
        cluster.service(namespace, f"pre{i:02d}")
    wait_for("50 allocated", lambda: all(all_ips(cluster, namespace).values()), 30)
    assert not b.is_leader()
    assert b.metric("exalb_allocator_api_writes_total", kind="Service") in (None, 0.0)
    assert (a.metric("exalb_allocator_api_writes_total", kind="Service") or 0) >= 50

    for i in range(450):
        if i == 100:
            a.proc.kill()
            killed = datetime.now(UTC)
        cluster.service(namespace, f"svc{i:03d}")
    wait_for("b takes over", b.is_leader, 10)
    # When b took over, by its own log: the creates above run on, and on a loaded machine
    # they alone can take longer than the lease.
    took = next(
        datetime.fromisoformat(line["timestamp"])
        for line in log_lines(b)
        if line.get("event") == "leadership changed" and line.get("leader") is True
    )
    takeover = (took - killed).total_seconds()
    assert takeover <= 4 + 3  # lease duration plus scheduling slack on a loaded 2-core box
    wait_for("500 allocated", lambda: all(all_ips(cluster, namespace).values()), 90)
    ips = all_ips(cluster, namespace)
    assert len(ips) == 500
    no_duplicates(ips)
    wait_for("500 published", lambda: len(cluster.published()) == 500, 30)
    published = cluster.published()
    assert {f"{namespace}.{n}": tuple(v) for n, v in ips.items()} == {
        k: e.ips for k, e in published.items()
    }
