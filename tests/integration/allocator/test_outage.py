"""An API server outage loses nothing: allocations stay, and work resumes when it is back."""

from __future__ import annotations

import time

import pytest

from testbed.controlplane import ControlPlane
from tests.integration.allocator.conftest import Cluster, StartAllocator

pytestmark = pytest.mark.integration


def test_allocator_survives_apiserver_outage(
    cluster: Cluster, start_allocator: StartAllocator, namespace: str, control_plane: ControlPlane
) -> None:
    cluster.pool("main", "198.51.100.0/28")
    alloc = start_allocator("outage", True, "--lease-duration=15", "--renew-deadline=10")
    for i in range(5):
        cluster.service(namespace, f"s{i}")
    before = {f"s{i}": cluster.wait_ips(namespace, f"s{i}") for i in range(5)}

    control_plane.stop_apiserver()
    time.sleep(12)  # longer than the renew deadline: the allocator must stop acting as leader
    assert alloc.proc.alive()
    control_plane.start_apiserver()

    cluster.service(namespace, "after")
    assert cluster.wait_ips(namespace, "after", timeout=40) == ["198.51.100.5"]
    assert {f"s{i}": cluster.ingress(namespace, f"s{i}") for i in range(5)} == before
    assert alloc.is_leader()
    assert alloc.ready()
