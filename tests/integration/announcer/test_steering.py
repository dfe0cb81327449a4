"""Traffic steering at the router: node tags, graded announcements, drain, weighted ECMP.

Real announcers and ExaBGP against FRR on loopback, asserting on what FRR's
``show bgp ipv4 unicast <prefix> json`` reports (paths, attributes, and which
paths it selects). No client traffic flows here: that is the data-path bed's job.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable

import pytest

from announcer.core import decide
from exalb.assignments import Advertisement, Degraded, LabelSelector
from testbed.lab import Lab, same_session
from testbed.procs import wait_for
from testbed.routers.base import RibPath, settle
from testbed.routers.frr import Frr
from tests.conftest import RouterFactory

pytestmark = pytest.mark.integration

IP, IP2 = "198.51.100.10", "198.51.100.11"
PREFIX, PREFIX2 = f"{IP}/32", f"{IP2}/32"
ROUTER_ASN = 64512  # eBGP: the lab's nodes are AS 64513


def frr(lab: Lab, router: RouterFactory, nodes: int) -> Frr:
    r = router("frr", lab.router_ip, ROUTER_ASN, lab.neighbors(nodes))
    assert isinstance(r, Frr)
    lab.add_peer("tor", r)
    return r


def wait_paths(
    r: Frr, prefix: str, what: str, check: Callable[[list[RibPath]], bool], timeout: float = 20
) -> list[RibPath]:
    seen: list[RibPath] = []

    def probe() -> bool:
        nonlocal seen
        seen = r.paths(prefix)
        return check(seen)

    wait_for(f"{prefix}: {what}", probe, timeout, on_timeout=lambda: f"FRR holds {seen}")
    return seen


def selected(paths: list[RibPath]) -> set[str]:
    return {p.next_hop for p in paths if p.selected}


def by_hop(paths: list[RibPath]) -> dict[str, RibPath]:
    return {p.next_hop: p for p in paths}


def node_tag(lab: Lab, i: int, asn: int | None = None) -> str:
    return f"{asn or lab.asn}:1:{int(ipaddress.IPv4Address(lab.hop(i)))}"


def test_every_route_names_its_node_unless_turned_off(lab: Lab, router: RouterFactory) -> None:
    r = frr(lab, router, 3)
    lab.add_node(1)
    lab.add_node(2, extra_args=["--node-large-community", "4200000000:7"])
    lab.add_node(3, extra_args=["--node-large-community", "off"])
    lab.set_endpoints("web", {1: True})
    # A per-Service MED (the exalb.io/bgp-med annotation) reaches the router as well.
    lab.set_assignments([lab.assignment("web", IP, advertisements=[Advertisement(med=10)])])
    paths = by_hop(r.wait_next_hops(PREFIX, {lab.hop(1), lab.hop(2), lab.hop(3)}, timeout=30))
    assert {p.med for p in paths.values()} == {10}
    assert paths[lab.hop(1)].large_communities == (node_tag(lab, 1),)
    assert paths[lab.hop(2)].large_communities == (
        f"4200000000:7:{int(ipaddress.IPv4Address(lab.hop(2)))}",
    )
    assert paths[lab.hop(3)].large_communities == ()


def test_graded_backup_is_used_only_when_no_healthy_node_is_left(
    lab: Lab, router: RouterFactory
) -> None:
    """Terminating-only and standby nodes stay announced, worse, instead of withdrawing."""
    r = frr(lab, router, 3)
    for i in (1, 2, 3):
        lab.add_node(i, labels={"role": "standby"} if i == 3 else {})
    grade = Degraded(
        med=500,
        as_path_prepend=2,
        communities=("65000:666",),
        node_selectors=(LabelSelector((("role", "standby"),)),),
    )
    adv = Advertisement(degraded=grade)
    lab.set_endpoints("local", {1: True, 2: "terminating"})
    lab.set_endpoints("cluster", {1: True})
    lab.set_assignments(
        [
            lab.assignment("local", IP, policy="Local", advertisements=[adv]),
            lab.assignment("cluster", IP2, advertisements=[adv]),
        ]
    )
    # Local: node 2 only drains terminating pods, so it is announced as a backup.
    paths = wait_paths(
        r,
        PREFIX,
        "node 1 preferred, node 2 a backup",
        lambda p: len(p) == 2 and selected(p) == {lab.hop(1)},
    )
    backup = by_hop(paths)[lab.hop(2)]
    assert (backup.med, backup.as_path, backup.communities) == (
        500,
        (lab.asn, lab.asn, lab.asn),
        ("65000:666",),
    )
    healthy = by_hop(paths)[lab.hop(1)]
    assert (healthy.med in (None, 0), healthy.as_path, healthy.communities) == (
        True,
        (lab.asn,),
        (),
    )
    # explain says so: node 2's attributes as the router holds them, and why they are worse.
    local = lab.wait_explained("local", {1: "", 2: "", 3: decide.NO_LOCAL_ENDPOINTS})
    row = lab.explained_node(local, 2)
    (route,) = row["routes"]
    assert (route["med"], tuple(route["asPath"]), tuple(route["communities"])) == (
        backup.med,
        backup.as_path,
        backup.communities,
    )
    assert set(route["largeCommunities"]) == set(backup.large_communities)
    assert "terminating" in row["degraded"]
    assert lab.explained_node(local, 1)["degraded"] == ""
    # Cluster: nodes 1 and 2 share the traffic (ECMP); standby node 3 does not.
    paths2 = wait_paths(
        r,
        PREFIX2,
        "ECMP over 1 and 2, 3 standing by",
        lambda p: selected(p) == {lab.hop(1), lab.hop(2)} and len(p) == 3,
    )
    assert by_hop(paths2)[lab.hop(3)].med == 500
    cluster = lab.wait_explained("cluster", {1: "", 2: "", 3: ""})
    assert "standby" in lab.explained_node(cluster, 3)["degraded"]

    # The healthy node loses its pod: the router falls back to the backup, and the prefix
    # never leaves its RIB on the way (sampled every FRR read, about 20 ms apart).
    lab.set_endpoints("local", {1: False, 2: "terminating"})
    seen_empty = 0

    def fallen_back() -> bool:
        nonlocal seen_empty
        p = r.paths(PREFIX)
        seen_empty += not p
        return selected(p) == {lab.hop(2)} and len(p) == 1

    wait_for("fallback to node 2", fallen_back, 20, interval=0.0)
    assert seen_empty == 0
    # Cluster: no healthy node left (1 and 2 not ready): the standby carries the traffic.
    lab.set_node_status(1, ready=False)
    lab.set_node_status(2, ready=False)
    wait_paths(
        r, PREFIX2, "only the standby", lambda p: selected(p) == {lab.hop(3)} and len(p) == 1
    )
    lab.set_node_status(1)
    wait_paths(r, PREFIX2, "node 1 preferred again", lambda p: selected(p) == {lab.hop(1)})


def test_cordon_drains_with_graceful_shutdown_then_withdraws_sessions_stay_up(
    lab: Lab, router: RouterFactory
) -> None:
    r = frr(lab, router, 2)
    drain = [
        "--drain-on-cordon",
        "--drain-taints",
        "example.com/maintenance",
        "--drain-seconds",
        "3",
    ]
    lab.add_node(1, extra_args=drain)
    lab.add_node(2, extra_args=drain)
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP)])
    both = {lab.hop(1), lab.hop(2)}
    r.wait_next_hops(PREFIX, both, timeout=30)
    # FRR reports "up since" to the second, jittering by one: a session younger than that
    # could read as up since after ``started``, like a reset would.
    settle(2)
    up = {i: r.uptime_since(lab.source(i)) for i in (1, 2)}
    started = time.time()

    lab.core.patch_node(lab.node(1).name, {"spec": {"unschedulable": True}})
    t0 = time.monotonic()
    # FRR lowers a GRACEFUL_SHUTDOWN path's preference. It shows a path's new
    # attributes before its best-path run has re-selected, so wait for both.
    wait_paths(
        r,
        PREFIX,
        "node 1 with GRACEFUL_SHUTDOWN, node 2 selected",
        lambda p: (
            "65535:0" in by_hop(p).get(lab.hop(1), RibPath("", "")).communities
            and selected(p) == {lab.hop(2)}
        ),
        timeout=5,
    )
    r.wait_next_hops(PREFIX, {lab.hop(2)}, timeout=10)
    drained_after = time.monotonic() - t0
    assert 2.5 <= drained_after <= 8, drained_after  # --drain-seconds 3, with honest slack
    lab.core.patch_node(lab.node(1).name, {"spec": {"unschedulable": False}})
    paths = r.wait_next_hops(PREFIX, both)
    assert all("65535:0" not in p.communities for p in paths)

    # A configured taint drains as a cordon does; another taint does not.
    taint = {"key": "example.com/maintenance", "effect": "NoSchedule"}
    lab.core.patch_node(lab.node(2).name, {"spec": {"taints": [taint]}})
    r.wait_next_hops(PREFIX, {lab.hop(1)}, timeout=15)
    other = {"key": "example.com/other", "effect": "NoSchedule"}
    lab.core.patch_node(lab.node(2).name, {"spec": {"taints": [other]}})
    r.wait_next_hops(PREFIX, both)
    for i in (1, 2):  # the sessions never reset
        assert same_session(up[i], r.uptime_since(lab.source(i)), started)


LB = re.compile(r"LB:(\d+):(\d+)")


def bandwidths(paths: list[RibPath]) -> dict[str, int]:
    """Next hop -> the link bandwidth (bytes/s) FRR read from its extended community."""
    out = {}
    for p in paths:
        m = LB.search(p.extended_community)
        if m:
            out[p.next_hop] = int(m.group(2))
    return out


def test_weighted_ecmp_follows_ready_local_endpoints_coalesced(
    lab: Lab, router: RouterFactory
) -> None:
    r = frr(lab, router, 2)
    hold = 3.0
    lab.add_node(1, extra_args=["--weight-hold", str(hold)])
    lab.add_node(2, extra_args=["--weight-hold", str(hold)])
    adv = Advertisement(mbps_per_endpoint=10)
    lab.set_endpoints("web", {1: True, 2: True})
    lab.set_assignments([lab.assignment("web", IP, policy="Local", advertisements=[adv])])
    wait_paths(r, PREFIX, "both at one endpoint", lambda p: len(bandwidths(p)) == 2)
    # Node 1 runs three pods, node 2 one: their link bandwidths are 3:1, and FRR
    # multipaths both (the weights are FRR's input to unequal-cost ECMP).
    lab.set_endpoints_counts("web", {1: 3, 2: 1})
    wait_paths(
        r,
        PREFIX,
        "3:1, both multipathed",
        lambda p: (
            bandwidths(p) == {lab.hop(1): 3 * 1_250_000, lab.hop(2): 1_250_000}
            and selected(p) == {lab.hop(1), lab.hop(2)}
        ),
    )

    # A scale-up in steps is coalesced: node 1's weight reaches the router at most twice
    # per hold (the first step at once, the last when the hold ends), not once per step.
    time.sleep(hold)  # the 3:1 change opened a hold; start the burst after it
    before = r.updates_received(lab.source(1))
    for n in range(4, 10):
        lab.set_endpoints_counts("web", {1: n, 2: 1})
        time.sleep(0.2)
    wait_paths(
        r,
        PREFIX,
        "9:1",
        lambda p: bandwidths(p).get(lab.hop(1)) == 9 * 1_250_000,
        timeout=hold + 10,
    )
    sent = r.updates_received(lab.source(1)) - before
    assert 1 <= sent <= 2, sent
