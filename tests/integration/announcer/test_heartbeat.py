"""A SIGKILLed announcer's heartbeat expires, and ``exalbctl explain`` says its node is dead.

Real announcers (as the chart's ServiceAccount, with tokens bound to their node, under the
chart's RBAC and admission policy), ExaBGP, GoBGP and the real apiserver. The killed
announcer's BGPSessionStatus stays as it was ("session up"): only the heartbeat Lease
tells that nothing runs there any more.
"""

from __future__ import annotations

import itertools
import signal

import pytest
from kubernetes import client, watch

from exalb.heartbeat import lease_name
from exalbctl.core.explain import ANNOUNCER_NOT_RUNNING, NOT_RUNNING
from testbed.lab import Lab
from testbed.procs import wait_for
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP = "198.51.100.40"
PREFIX = f"{IP}/32"
LEASE = 3  # --heartbeat-lease-duration: renewed every 0.75 s
# The renewal that was in flight, exalbctl's own reads (a second or two on this loaded
# 2-core machine) and its poll interval all come on top of the lease duration.
MARGIN = 6.0
FLAGS = ("--heartbeat-lease-duration", str(LEASE))


def test_explain_names_a_killed_announcer_within_its_lease_and_clears_on_restart(
    lab: Lab, router: RouterFactory
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(2))
    lab.add_peer("tor", r)
    lab.add_node(1, extra_args=FLAGS)
    lab.add_node(2, extra_args=FLAGS)
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP)])
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=30)
    data = lab.wait_explained("web", {1: "", 2: ""})
    assert {n["heartbeat"]["state"] for n in data["nodes"]} == {"alive"}
    _, peers = lab.exalbctl("peers")
    assert {b["state"] for b in peers["heartbeats"].values()} == {"alive"}

    proc = lab.node(1).proc
    assert proc is not None
    before = lab.session_status(1)
    proc.signal(signal.SIGKILL)
    seen: list[dict[str, object]] = []

    def dead() -> bool:
        code, data = lab.explain("web")
        seen[:] = [lab.explained_node(data, 1)]
        return code == 1 and seen[0]["announcer"] == NOT_RUNNING

    wait_for("explain: node 1's announcer not running", dead, LEASE + MARGIN, interval=0.2)
    # Not before its Lease expired: the last renewal was stamped up to one interval and one
    # request (2 s at most) before the kill, so the kill-to-report time itself says little.
    assert seen[0]["heartbeat"]["age"] >= LEASE, seen  # JSON rounds it to 0.1 s
    code, data = lab.explain("web")
    row = lab.explained_node(data, 1)
    assert (row["announces"], row["check"]) == (False, ANNOUNCER_NOT_RUNNING)
    assert row["routes"] == [] and row["heartbeat"]["state"] == "stale"
    expected = f"node {lab.node(1).name}: announcer not running: no heartbeat for "
    [problem] = [p for p in data["problems"] if p.startswith(expected)]
    assert problem.endswith("(expected every 0.8 s)"), problem
    live = lab.explained_node(data, 2)
    assert (live["announces"], live["announcer"], live["heartbeat"]["state"]) == (
        True,
        "agrees",
        "alive",
    )
    # What made this necessary: the dead node's status still says its session is up.
    assert lab.session_status(1) == before
    assert {p["state"] for p in (before or {}).get("peers", [])} == {"up"}
    code, peers = lab.exalbctl("peers")
    assert code == 1 and peers["heartbeats"][lab.node(1).name]["state"] == "stale"
    assert any(p.startswith(expected) for p in peers["problems"])

    proc.stop()  # gone already; this reaps it
    lab.start_announcer(1, FLAGS)
    r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2)}, timeout=30)
    data = lab.wait_explained("web", {1: "", 2: ""}, timeout=20)
    assert data["problems"] == []
    assert lab.explained_node(data, 1)["heartbeat"]["state"] == "alive"


def test_the_lease_is_renewed_as_the_node_with_one_write_per_interval(
    lab: Lab, router: RouterFactory, kube: client.ApiClient
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_peer("tor", r)
    lab.add_node(1, extra_args=FLAGS)
    leases = client.CoordinationV1Api(kube)
    name = lease_name(lab.node(1).name)
    wait_for("the heartbeat Lease", lambda: _exists(leases, lab.namespace, name), 20)
    first = leases.read_namespaced_lease(name, lab.namespace)
    assert first.spec.holder_identity == lab.node(1).name
    assert first.spec.lease_duration_seconds == LEASE
    # Every write to the Lease is one MODIFIED event: count them over a window.
    window = 6
    stream = watch.Watch().stream(
        leases.list_namespaced_lease,
        lab.namespace,
        field_selector=f"metadata.name={name}",
        resource_version=first.metadata.resource_version,
        timeout_seconds=window,
    )
    renewals = [e["object"].spec for e in stream if e["type"] == "MODIFIED"]
    interval = LEASE / 4
    # At most one write per interval (a step takes time, so fewer on a loaded machine);
    # at least one per lease duration, or the heartbeat would expire.
    assert window / LEASE <= len(renewals) <= window / interval + 1, len(renewals)
    assert all(s.holder_identity == lab.node(1).name for s in renewals)
    times = [first.spec.renew_time, *(s.renew_time for s in renewals)]
    assert all(b > a for a, b in itertools.pairwise(times))
    assert "exalb_announcer_heartbeat_renewed_timestamp_seconds" in lab.metrics(1)


def _exists(leases: client.CoordinationV1Api, namespace: str, name: str) -> bool:
    try:
        leases.read_namespaced_lease(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
