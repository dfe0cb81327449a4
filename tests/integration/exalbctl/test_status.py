"""``exalbctl status`` on the real apiserver with the real allocator: what is wrong, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from exalbctl import exits
from testbed.procs import wait_for
from tests.integration.allocator.conftest import Cluster, StartAllocator
from tests.integration.exalbctl.conftest import Ctl

pytestmark = pytest.mark.integration


def session_status(node: str, state: str, error: str) -> dict[str, Any]:
    """A BGPSessionStatus as announcer/kube/status.py writes it (announcer.reconciler.status)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "exalb.io/v1alpha1",
        "kind": "BGPSessionStatus",
        "metadata": {"name": node},
        "status": {
            "node": node,
            "sessions": 1,
            "sessionsUp": 1 if state == "up" else 0,
            "servicesAnnounced": 0,
            "updated": now,
            "peers": [
                {
                    "name": "tor",
                    "address": "192.0.2.1",
                    "state": state,
                    "since": now,
                    "lastError": error,
                    "prefixes": 0,
                    "updatesSent": 0,
                    "exabgpRestarts": 0,
                }
            ],
        },
    }


def test_status_names_what_is_wrong_and_clears_when_fixed(
    kube: client.ApiClient,
    cluster: Cluster,
    exalb_ns: str,
    start_allocator: StartAllocator,
    ctl: Ctl,
) -> None:
    custom: Any = client.CustomObjectsApi(kube)
    cluster.pool("main", "198.51.100.0/31")
    custom.create_namespaced_custom_object(
        "exalb.io",
        "v1alpha1",
        exalb_ns,
        "bgpsessionstatuses",
        session_status("node-a", "down", "Connection refused"),
    )
    start_allocator()
    cluster.service(exalb_ns, "web")
    cluster.service(exalb_ns, "gold", annotations={"exalb.io/address-pool": "gold"})
    assert cluster.wait_ips(exalb_ns, "web") == ["198.51.100.0"]
    cluster.wait_event(exalb_ns, "gold", "AllocationFailed", "does not exist")

    got = ctl("status", "-n", exalb_ns)
    assert got.code == exits.PROBLEMS, got.out
    assert f"{exalb_ns}/web  198.51.100.0  main" in got.out
    reason = (
        f"AllocationFailed: Failed to allocate IP for {exalb_ns}/gold: pool 'gold' does not exist"
    )
    assert f"{exalb_ns}/gold  {reason}" in got.out
    assert f"Service {exalb_ns}/gold is pending: {reason}" in got.out
    assert "node-a  none       tor   192.0.2.1  down" in got.out
    assert "session to peer tor (192.0.2.1) is down" in got.out

    # fix both: the pending Service goes, the session comes up
    cluster.core.delete_namespaced_service("gold", exalb_ns)
    custom.patch_namespaced_custom_object(
        "exalb.io",
        "v1alpha1",
        exalb_ns,
        "bgpsessionstatuses",
        "node-a",
        {"status": session_status("node-a", "up", "")["status"]},
    )
    wait_for("pool counters", lambda: cluster.pool_status("main").get("assignedIPv4") == 1, 15)
    ok = ctl.script("status", "-n", exalb_ns, "-o", "yaml")
    assert ok.code == exits.OK, ok.out + ok.err
    assert "problems: []" in ok.out

    # a full pool is a problem too
    cluster.service(exalb_ns, "api")
    cluster.wait_ips(exalb_ns, "api")
    wait_for("pool full", lambda: cluster.pool_status("main").get("availableIPv4") == 0, 15)
    full = ctl("status", "-n", exalb_ns, "-o", "json")
    assert full.code == exits.PROBLEMS
    assert full.json()["problems"] == ["pool main is exhausted: 2/2 IPv4 addresses assigned"]
