"""Traffic steering proven by where a client's requests land (issue 13).

One release, one ``Local`` Service over two Deployments pinned to the bed's
nodes: three web pods on the first node ("heavy"), one on the second
("light"). The pool's advertisement asks for weighted ECMP (a link-bandwidth
community per node, proportional to its ready local endpoints) and grades
standby nodes (label ``STANDBY``) with a worse MED and AS path; the announcers
drain a cordoned node. The bed's FRR (zebra installs its routes in the router
namespace's kernel, which hashes flows on ports: fib_multipath_hash_policy=1)
gets ``bgp bestpath bandwidth skip-missing`` for this module. The client
opens a new connection per request; each scenario asserts on what those
requests saw, and on the weights or next hops in the router's kernel. The
figures join test_traffic.py's at the end of the run; bench/TRAFFIC.md holds
one run's.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from testbed import netns
from testbed.lab import same_session
from testbed.nodes import ROUTER_ASN, Bed
from testbed.procs import wait_for
from testbed.routers.frr_netns import FrrNamespace
from testbed.traffic import Request, outage

from . import test_traffic
from .chart import addresses, installed, wait_established, wait_next_hops
from .scenarios import (
    FIGURES,
    INTERVAL,
    Vip,
    answering,
    new_vip,
    record,
    route_log,
    started_after,
    timeline,
    traffic,
)
from .workloads import READY_FILE, new_namespace, ready_pods, web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

figures = test_traffic.figures  # printed at the end of the module, with this module's lines

HEAVY_PODS, LIGHT_PODS = 3, 1
SHARE = HEAVY_PODS / (HEAVY_PODS + LIGHT_PODS)  # of new connections the heavy node should get
SPLIT_REQUESTS = 400
# Each new connection's source port is new, so each is an independent draw that lands on the
# heavy node with probability SHARE: its count is Binomial(400, 0.75), mean 300 and standard
# deviation sqrt(400 * 0.75 * 0.25) = 8.7. ±0.08 of the share (±32 requests, 3.7 standard
# deviations) fails a correct 3:1 split with probability about 2e-4, and an equal split
# (0.5, 29 standard deviations of *its* spread away) never passes.
SPLIT_TOLERANCE = 0.08
STANDBY = {"exalb.io/test-standby": "true"}
GRADE = {"med": 500, "asPathPrepend": 2, "nodeSelectors": [{"matchLabels": STANDBY}]}
DRAIN_SECONDS = 5
WEIGHT_HOLD = 1  # seconds; the chart's default is 5
BANDWIDTH = "bgp bestpath bandwidth skip-missing"


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart with drain on cordon, a pool that weighs and grades, FRR that reads weights."""
    router = frr(bed)
    router.configure(f"router bgp {ROUTER_ASN}", BANDWIDTH)
    drain = {"onCordon": True, "seconds": DRAIN_SECONDS}
    values = {"announcer": {"drain": drain, "weightHold": WEIGHT_HOLD}}
    advertisement = {"weightedECMP": {"mbpsPerEndpoint": 10}, "degraded": GRADE}
    try:
        with installed(bed, values=values, advertisements=[advertisement]) as running:
            yield running
    finally:
        router.configure(f"router bgp {ROUTER_ASN}", f"no {BANDWIDTH}")


def frr(bed: Bed) -> FrrNamespace:
    assert bed.router is not None
    return bed.router


@pytest.fixture(scope="module")
def web_pods(exalb: Bed) -> Iterator[str]:
    """The namespace of the web pods: HEAVY_PODS on the first node, LIGHT_PODS on the second."""
    wait_established(exalb)
    heavy, light = exalb.nodes
    with new_namespace(exalb) as name:
        web(exalb, name, HEAVY_PODS, node=heavy.name)
        web(exalb, name, LIGHT_PODS, node=light.name)
        ready_pods(exalb, name, "app=web", HEAVY_PODS + LIGHT_PODS)
        yield name


@pytest.fixture(scope="module")
def vip(exalb: Bed, web_pods: str) -> Vip:
    return new_vip(exalb, web_pods, "web-steered", "Local")


def steady(bed: Bed, namespace: str, vip: Vip) -> dict[str, list[str]]:
    """Every web pod Ready and both nodes in the router's kernel: before and after a scenario.
    Returns node name to its web pods' names."""
    pods = ready_pods(bed, namespace, "app=web", HEAVY_PODS + LIGHT_PODS)
    both = set(addresses(bed).values())
    wait_next_hops(bed, vip.prefix, both, timeout=90)
    wait_kernel(bed, vip.prefix, both)
    by_node: dict[str, list[str]] = {}
    for p in pods:
        by_node.setdefault(p.spec.node_name, []).append(p.metadata.name)
    return by_node


def wait_kernel(bed: Bed, prefix: str, hops: set[str], timeout: float = 30) -> None:
    """Until the router's kernel forwards ``prefix`` to exactly ``hops``."""
    wait_for(
        f"{prefix} to {sorted(hops)} in the router's kernel",
        lambda: frr(bed).kernel_next_hops(prefix) == hops,
        timeout=timeout,
        interval=0.05,
        on_timeout=lambda: kernel_route(bed, prefix),
    )


def kernel_route(bed: Bed, prefix: str) -> str:
    """``ip route`` for ``prefix`` in the router namespace, and its nexthop group if it has one."""
    ns = bed.ns("router")
    text = netns.run(ns, ["ip", "route", "show", "exact", prefix]).strip()
    routes = json.loads(netns.run(ns, ["ip", "-j", "route", "show", "exact", prefix]) or "[]")
    for nhid in {r["nhid"] for r in routes if "nhid" in r}:
        text += "\n" + netns.run(ns, ["ip", "nexthop", "show", "id", str(nhid)]).strip()
    return text


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def median_ms(records: Sequence[Request]) -> str:
    return f"median {statistics.median(r.seconds for r in records if r.ok) * 1000:.0f} ms"


# --- 1. weighted ECMP -------------------------------------------------------


def test_weighted_ecmp_splits_new_connections_in_proportion_to_local_pods(
    exalb: Bed, web_pods: str, vip: Vip
) -> None:
    steady(exalb, web_pods, vip)
    heavy, light = exalb.nodes
    router = frr(exalb)
    # bgpd turns the link bandwidths (3 x 10 and 1 x 10 Mbps) into next-hop weights
    # proportional to them; zebra installs those in the kernel.
    wait_for(
        "the kernel's weights 3:1",
        lambda: _ratio(router.kernel_weights(vip.prefix), heavy.address, light.address) == 3,
        timeout=20,
        interval=0.2,
        on_timeout=lambda: f"{kernel_route(exalb, vip.prefix)}\nFRR: {router.paths(vip.prefix)}",
    )
    weights = router.kernel_weights(vip.prefix)
    route = kernel_route(exalb, vip.prefix)
    with traffic(exalb, vip.prefix, "weighted", count=SPLIT_REQUESTS) as c:
        c.wait_until(
            f"{SPLIT_REQUESTS} requests",
            lambda rs: len(rs) >= SPLIT_REQUESTS,
            SPLIT_REQUESTS * INTERVAL + 20,
        )
    records = c.records()
    landed = Counter(r.node for r in records if r.ok)
    share = landed[heavy.name] / len(records)
    sd = math.sqrt(SHARE * (1 - SHARE) / len(records))
    FIGURES["(s1) Local, weighted ECMP 3 pods : 1 pod"] = (
        f"{dict(landed)} of {len(records)}, heavy share {share:.3f} (expected {SHARE:.2f}, "
        f"{(share - SHARE) / sd:+.1f} sd), kernel weights {weights}, {median_ms(records)}, "
        f"{load()}; {' | '.join(route.splitlines())}"
    )
    print("\n" + FIGURES["(s1) Local, weighted ECMP 3 pods : 1 pod"])
    assert [r for r in records if not r.ok] == []
    assert abs(share - SHARE) <= SPLIT_TOLERANCE, (share, landed)


def _ratio(weights: dict[str, int], heavy: str, light: str) -> float:
    return weights.get(heavy, 0) / weights[light] if weights.get(light) else 0.0


# --- 2. graded announcements ------------------------------------------------


def test_the_router_prefers_the_healthy_node_and_falls_back_to_the_standby_without_outage(
    exalb: Bed, web_pods: str, vip: Vip
) -> None:
    pods = steady(exalb, web_pods, vip)
    heavy, light = exalb.nodes
    router = frr(exalb)
    label = next(iter(STANDBY))
    exalb.kubectl("label", "node", light.name, f"{label}={STANDBY[label]}")
    try:
        wait_for(
            "the standby's path kept as a backup, only the healthy node in the kernel",
            lambda: (
                len(router.paths(vip.prefix)) == 2
                and {p.next_hop for p in router.paths(vip.prefix) if p.selected} == {heavy.address}
                and router.kernel_next_hops(vip.prefix) == {heavy.address}
            ),
            timeout=20,
            interval=0.2,
            on_timeout=lambda: f"FRR: {router.paths(vip.prefix)}",
        )
        backup = next(p for p in router.paths(vip.prefix) if p.next_hop == light.address)
        assert backup.med == GRADE["med"] and len(backup.as_path) == 3, backup
        fallback(exalb, web_pods, vip, pods)
    finally:
        exalb.kubectl("label", "node", light.name, f"{label}-")
    steady(exalb, web_pods, vip)


def fallback(bed: Bed, namespace: str, vip: Vip, pods: dict[str, list[str]]) -> None:
    """Every pod of the healthy node turns unready while the client counts."""
    heavy, light = bed.nodes
    with answering(bed, "graded", vip) as runs, route_log(bed, vip.prefix) as changes:
        c = runs["Local"]
        preferred = time.time()
        c.wait_until("2 s of requests to the healthy node", started_after(preferred + 2), 10)
        event = time.time()
        for pod in pods[heavy.name]:
            bed.kubectl("exec", "-n", namespace, pod, "--", "rm", READY_FILE)
        unready = time.time()
        wait_kernel(bed, vip.prefix, {light.address})
        moved = time.time()
        c.wait_until("2 s of requests after the fallback", started_after(moved + 2), 10)
        back = time.time()
        for pod in pods[heavy.name]:
            bed.kubectl("exec", "-n", namespace, pod, "--", "touch", READY_FILE)
        wait_kernel(bed, vip.prefix, {heavy.address})
        returned = time.time()
        c.wait_until("2 s of requests after the return", started_after(returned + 2), 10)
    records = c.records()
    before = [r for r in records if preferred <= r.start < event]
    after = [r for r in records if moved + 0.5 <= r.start < back]
    fell = outage(records, event, until=back)
    switch = outage(records, unready, until=back)
    record(
        "(s2) Local, the healthy node's 3 pods unready, the standby takes over",
        fell,
        f"last pod unready by +{unready - event:.2f}s, standby alone in the kernel "
        f"+{moved - event:.2f}s, {switch.failed} failed from then on, "
        f"before {Counter(r.node for r in before)}, after {Counter(r.node for r in after)}, "
        f"{median_ms(records)}",
    )
    recovered = outage(records, back)
    record(
        "(s2) Local, the healthy node ready again",
        recovered,
        f"healthy node alone in the kernel +{returned - back:.2f}s",
    )
    explained = f"{fell.line()}\n{timeline(records, event, changes)}"
    assert before and all(r.ok and r.node == heavy.name for r in before), explained
    assert after and all(r.ok and r.node == light.name for r in after), explained
    assert all(hops for _, hops in changes), f"the route left the kernel: {changes}"
    # Every new connection was answered: the route always led to a node that serves. A
    # connection already open can still time out when its server stalls on the loaded machine
    # (counted in the figures, with when it happened against the route change).
    assert fell.new_failed == 0, explained
    assert recovered.new_failed == 0, f"{recovered.line()}\n{timeline(records, back, changes)}"


# --- 3. drain on cordon -----------------------------------------------------


def test_cordon_moves_traffic_away_with_no_failed_new_request_and_sessions_up(
    exalb: Bed, web_pods: str, vip: Vip
) -> None:
    steady(exalb, web_pods, vip)
    up = established_since(exalb)
    started = time.time()
    heavy, light = exalb.nodes
    with answering(exalb, "cordon", vip) as runs, route_log(exalb, vip.prefix) as changes:
        c = runs["Local"]
        event = time.time()
        exalb.kubectl("cordon", heavy.name)
        cordoned = time.time() - event
        try:
            marks = {"kubectl cordon returned": cordoned, **drained(exalb, vip, event)}
            withdrawn = time.time()
            c.wait_until("2 s of requests after the withdrawal", started_after(withdrawn + 2), 10)
        finally:
            uncordoned = time.time()
            exalb.kubectl("uncordon", heavy.name)
        steady(exalb, web_pods, vip)
        back = time.time()
        c.wait_until("2 s of requests after the return", started_after(back + 2), 10)
    records = c.records()
    moved = event + marks["moved"]
    away = [r for r in records if moved + 0.5 <= r.start < uncordoned]
    drain = outage(records, event, until=uncordoned)
    record(
        "(s3) Local, the heavy node cordoned (drain 5 s)",
        drain,
        ", ".join(f"{k} +{v:.2f}s" for k, v in marks.items())
        + f", after the move {Counter(r.node for r in away)}, {median_ms(records)}",
    )
    returned = outage(records, uncordoned)
    record(
        "(s3) Local, uncordoned", returned, f"both nodes in the kernel +{back - uncordoned:.2f}s"
    )
    explained = f"{drain.line()}\n{timeline(records, event, changes)}"
    assert away and all(r.ok and r.node == light.name for r in away), explained
    assert drain.new_failed == 0, explained
    assert returned.new_failed == 0, f"{returned.line()}\n{timeline(records, uncordoned, changes)}"
    # The drain runs from the GRACEFUL_SHUTDOWN re-announcement (kubectl's own time, which a
    # loaded machine stretches to seconds, is before it) to the withdrawal.
    drained_for = marks["withdrawn"] - marks["graceful shutdown at FRR"]
    assert DRAIN_SECONDS - 0.5 <= drained_for <= DRAIN_SECONDS + 5, marks
    now = established_since(exalb)
    for address, since in up.items():  # the sessions never reset
        assert same_session(since, now[address], started), (address, since, now[address])


def established_since(bed: Bed) -> dict[str, float | None]:
    """Node address to when its BGP session at the router came up (None: not Established)."""
    router = frr(bed)
    return {n.address: router.uptime_since(n.address) for n in bed.nodes}


def drained(bed: Bed, vip: Vip, event: float) -> dict[str, float]:
    """Seconds from the cordon until FRR held the node's path with GRACEFUL_SHUTDOWN, until its
    kernel forwarded only to the other node, and until FRR had withdrawn the path."""
    heavy, light = bed.nodes
    router = frr(bed)
    marks: dict[str, float] = {}

    def shut(paths: Any) -> bool:
        return any(p.next_hop == heavy.address and "65535:0" in p.communities for p in paths)

    wait_for(
        "GRACEFUL_SHUTDOWN on the cordoned node's path",
        lambda: shut(router.paths(vip.prefix)),
        timeout=10,
        interval=0.05,
        on_timeout=lambda: f"FRR: {router.paths(vip.prefix)}",
    )
    marks["graceful shutdown at FRR"] = time.time() - event
    wait_kernel(bed, vip.prefix, {light.address}, timeout=10)
    marks["moved"] = time.time() - event
    wait_next_hops(bed, vip.prefix, {light.address}, timeout=DRAIN_SECONDS + 10)
    marks["withdrawn"] = time.time() - event
    return marks
