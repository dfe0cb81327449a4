"""Real traffic through Service addresses: what a client outside the cluster sees.

The client (testbed.traffic, in the bed's client namespace) opens a new
connection per request to a Service address; the router forwards by the
routes FRR installed in its kernel; kube-proxy on the node that receives the
packet delivers it to a web pod, which answers with its pod, its node and the
source address it saw. Every scenario asserts on that record, not on what
exalb believes. One release, two web pods (one per node) and two Services
(Cluster and Local) serve the whole module; each scenario starts from, and
leaves, every node announcing both addresses. The figures are printed at the
end of the module; bench/TRAFFIC.md holds one run's.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from testbed.node import Node
from testbed.nodes import Bed, client_address, pod_cidr
from testbed.procs import wait_for
from testbed.traffic import Client, Outage, Request, client, outage

from .chart import (
    ANNOUNCERS,
    SYSTEM,
    addresses,
    next_hops,
    pods_by_node,
    roll_announcers,
    service,
    wait_established,
    wait_next_hops,
)
from .workloads import READY_FILE, new_namespace, web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

INTERVAL = 0.1  # 10 new connections a second per client
# Seconds a request may take: one SYN retransmission (1 s) fits, so a starved CPU on the
# 2-core machine is not counted as a lost path; a black hole still is.
TIMEOUT = 2.0
FIGURES: dict[str, str] = {}


@dataclass(frozen=True)
class Vip:
    name: str
    prefix: str
    answered_after: float  # seconds from the Service's creation to the client's first answer

    @property
    def address(self) -> str:
        return self.prefix.removesuffix("/32")


@pytest.fixture(scope="module", autouse=True)
def figures(
    request: pytest.FixtureRequest, bed: Bed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Print every scenario's figures once the module is done (bench/TRAFFIC.md quotes them),
    and keep the clients' records where pytest keeps its last runs' files."""
    yield
    kept = tmp_path_factory.mktemp("traffic")
    if (bed.workdir / "traffic").is_dir():
        shutil.copytree(bed.workdir / "traffic", kept, dirs_exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\ntraffic records: {kept}")
        reporter.write_line("traffic figures (failed/requests, outage first→last failure):")
        for scenario, line in FIGURES.items():
            reporter.write_line(f"  {scenario}: {line}")


@pytest.fixture(scope="module")
def web_pods(exalb: Bed) -> Iterator[str]:
    """The namespace of the web pods, one per node."""
    wait_established(exalb)
    with new_namespace(exalb) as name:
        web(exalb, name, replicas=len(exalb.nodes))
        pods_by_node(exalb, name, len(exalb.nodes))
        yield name


@pytest.fixture(scope="module")
def cluster_vip(exalb: Bed, web_pods: str) -> Vip:
    return _new_vip(exalb, web_pods, "web-cluster", "Cluster")


@pytest.fixture(scope="module")
def local_vip(exalb: Bed, web_pods: str) -> Vip:
    return _new_vip(exalb, web_pods, "web-local", "Local")


def _new_vip(bed: Bed, namespace: str, name: str, policy: str) -> Vip:
    """Create the Service, then send requests to its address until one is answered."""
    created = time.time()
    prefix = service(bed, namespace, name, policy)
    with traffic(bed, prefix, f"{name}-first") as c:
        c.wait_until("a first answer", lambda rs: any(r.ok for r in rs), timeout=60)
    first = next(r for r in c.records() if r.ok)
    return Vip(name, prefix, first.start - created)


@contextmanager
def traffic(bed: Bed, prefix: str, run: str, **options: float) -> Iterator[Client]:
    path = bed.workdir / "traffic" / f"{run}.jsonl"
    path.parent.mkdir(exist_ok=True)
    address = prefix.removesuffix("/32")
    # Bounds well past the longest scenario (a rollout): each scenario stops its client.
    bounds: dict[str, float] = {"count": 3000, "duration": 300, **options}
    with client(
        bed.ns("client"), address, path, interval=INTERVAL, timeout=TIMEOUT, **bounds
    ) as started:
        yield started


@contextmanager
def answering(bed: Bed, run: str, **vips: Vip) -> Iterator[dict[str, Client]]:
    """A client per address (by policy name), each already answered 20 times."""
    with ExitStack() as stack:
        runs = {
            name: stack.enter_context(traffic(bed, vip.prefix, f"{run}-{name.lower()}"))
            for name, vip in vips.items()
        }
        for c in runs.values():
            c.wait_until("answers", _answered(20), timeout=20)
        yield runs


def _answered(count: int) -> Any:
    return lambda records: sum(r.ok for r in records) >= count


def _started_after(moment: float) -> Any:
    return lambda records: any(r.start > moment for r in records)


def _requests(bed: Bed, vip: Vip, run: str, count: int) -> list[Request]:
    with traffic(bed, vip.prefix, run, count=count) as c:
        c.wait_until(f"{count} requests", lambda rs: len(rs) >= count, count * INTERVAL + 10)
    return c.records()


def entry_node(bed: Bed, peer: str) -> str:
    """The node a Cluster request entered by: kube-proxy masquerades it to the address of the
    interface it leaves by, the node's own or its pod bridge's gateway."""
    for i, node in enumerate(bed.nodes, start=1):
        if peer in (node.address, str(ipaddress.ip_network(pod_cidr(i))[1])):
            return node.name
    raise AssertionError(f"{peer} is no node's address")


def steady(bed: Bed, namespace: str, *vips: Vip) -> dict[str, str]:
    """Every web pod Ready and every node announcing every address: before and after a scenario."""
    pods = pods_by_node(bed, namespace, len(bed.nodes))
    for vip in vips:
        wait_next_hops(bed, vip.prefix, set(addresses(bed).values()), timeout=90)
    return pods


@contextmanager
def route_log(bed: Bed, prefix: str) -> Iterator[list[tuple[float, frozenset[str]]]]:
    """Each change of ``prefix``'s next hops in the router's kernel, with its time."""
    assert bed.router is not None
    router, changes, stop = bed.router, [], threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            hops = frozenset(router.kernel_next_hops(prefix))
            if not changes or changes[-1][1] != hops:
                changes.append((time.time(), hops))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield changes
    finally:
        stop.set()
        sampler.join(5)


def timeline(
    records: Sequence[Request], event: float, changes: Sequence[tuple[float, frozenset[str]]] = ()
) -> str:
    """Per second after ``event``: answers, failures by outcome and phase, route changes."""
    lines = []
    for second in range(int(max((r.start for r in records), default=event) - event) + 1):
        window = [r for r in records if event + second <= r.start < event + second + 1]
        failed = Counter(f"{r.outcome}/{r.detail[:10]}" for r in window if not r.ok)
        routes = [sorted(h) for t, h in changes if event + second <= t < event + second + 1]
        answers = Counter(r.node for r in window if r.ok)
        slowest = max((r.seconds for r in window if r.ok), default=0.0)
        lines.append(
            f"+{second:3d}s ok {dict(answers)} (slowest {slowest:.2f}s) failed {dict(failed)}"
            f" routes {routes}"
        )
    return "\n".join(lines)


def _failures_end_by(
    scenario: str,
    runs: dict[str, Client],
    event: float,
    extra: str,
    bound: float,
    changes: Sequence[tuple[float, frozenset[str]]] = (),
) -> None:
    """Record each client's figures, then assert its last failure started within ``bound``
    seconds of ``event``."""
    for name, c in runs.items():
        _record(scenario.format(name), outage(c.records(), event), extra)
    for c in runs.values():
        o = outage(c.records(), event)
        explained = f"{o.line()}\n{timeline(c.records(), event, changes)}"
        assert o.last_failure is None or o.last_failure <= bound, explained


def _record(scenario: str, o: Outage, extra: str = "") -> None:
    FIGURES[scenario] = o.line() + (f"; {extra}" if extra else "")
    print(f"\n{scenario}: {FIGURES[scenario]}")


# --- (a) and (b): a Service answers, by policy ------------------------------


def test_a_service_gets_an_address_and_http_through_it_answers(
    exalb: Bed, cluster_vip: Vip, local_vip: Vip
) -> None:
    for vip in (cluster_vip, local_vip):
        FIGURES[f"{vip.name}: Service created → first answer"] = f"{vip.answered_after:.2f}s"
        assert vip.answered_after < 20, vip
    assert exalb.router is not None
    router, nodes = exalb.router, set(addresses(exalb).values())
    wait_for(
        "the Cluster address in the router's kernel, one next hop per node",
        lambda: router.kernel_next_hops(cluster_vip.prefix) == nodes,
        timeout=10,
        interval=0.1,
    )


def test_cluster_requests_spread_over_every_announcing_node(
    exalb: Bed, web_pods: str, cluster_vip: Vip
) -> None:
    steady(exalb, web_pods, cluster_vip)
    records = _requests(exalb, cluster_vip, "cluster-spread", 100)
    assert [r for r in records if not r.ok] == []
    names = {n.name for n in exalb.nodes}
    assert {entry_node(exalb, r.peer) for r in records} == names, "ECMP used every node"
    assert {r.node for r in records} == names, "kube-proxy chose pods on every node"


def test_local_requests_reach_the_pod_of_their_node_with_the_client_address_kept(
    exalb: Bed, web_pods: str, local_vip: Vip
) -> None:
    steady(exalb, web_pods, local_vip)
    records = _requests(exalb, local_vip, "local-spread", 100)
    assert [r for r in records if not r.ok] == []
    assert {r.peer for r in records} == {client_address()}
    assert {r.node for r in records} == {n.name for n in exalb.nodes}


# --- (c) a pod turns unready, or is deleted ---------------------------------


def test_a_pod_turning_unready_sends_local_requests_only_to_the_other_node(
    exalb: Bed, web_pods: str, local_vip: Vip
) -> None:
    pods = steady(exalb, web_pods, local_vip)
    gone, other = exalb.nodes
    with answering(exalb, "unready", Local=local_vip) as runs:
        c = runs["Local"]
        event = time.time()
        exalb.kubectl("exec", "-n", web_pods, pods[gone.name], "--", "rm", READY_FILE)
        wait_next_hops(exalb, local_vip.prefix, {other.address})
        withdrawn = time.time()
        c.wait_until("2 s of requests after the withdrawal", _started_after(withdrawn + 2), 10)
        ready_again = time.time()
        exalb.kubectl("exec", "-n", web_pods, pods[gone.name], "--", "touch", READY_FILE)
        steady(exalb, web_pods, local_vip)
        announced = time.time()
        c.wait_until("2 s of requests after the announcement", _started_after(announced + 2), 10)
    records = c.records()
    unready = outage(records, event, until=ready_again)
    _record("(c) Local, pod unready", unready, f"FRR withdrew the node +{withdrawn - event:.2f}s")
    back = outage(records, ready_again)
    _record("(c) Local, pod ready again", back, f"FRR announced +{announced - ready_again:.2f}s")
    # Only a node with a ready pod answers once the router has withdrawn the other one.
    settled = [r for r in records if withdrawn + 0.5 < r.start < ready_again]
    assert settled and all(r.ok and r.node == other.name for r in settled), settled
    # Failures end once the router has withdrawn the node, and once it announces it again.
    assert unready.last_failure is None or unready.last_failure <= withdrawn - event + 1, (
        f"{unready.line()}\n{timeline(records, event)}"
    )
    assert back.last_failure is None or back.last_failure <= announced - ready_again + 2, (
        f"{back.line()}\n{timeline(records, ready_again)}"
    )


def test_a_deleted_pod_is_replaced_while_local_and_cluster_requests_are_counted(
    exalb: Bed, web_pods: str, local_vip: Vip, cluster_vip: Vip
) -> None:
    pods = steady(exalb, web_pods, local_vip, cluster_vip)
    gone, other = exalb.nodes
    with (
        answering(exalb, "deleted", Local=local_vip, Cluster=cluster_vip) as runs,
        route_log(exalb, cluster_vip.prefix) as changes,
    ):
        event = time.time()
        exalb.kubectl("delete", "pod", "-n", web_pods, pods[gone.name], "--wait=false")
        wait_next_hops(exalb, local_vip.prefix, {other.address})
        withdrawn = time.time()
        replaced = steady(exalb, web_pods, local_vip, cluster_vip)
        announced = time.time()
        runs["Local"].wait_until("2 s of requests after", _started_after(announced + 2), 10)
    assert replaced[gone.name] != pods[gone.name]
    _failures_end_by(
        "(c) {}, pod deleted and replaced",
        runs,
        event,
        f"FRR withdrew the node +{withdrawn - event:.2f}s, "
        f"the replacement announced +{announced - event:.2f}s",
        bound=announced - event + 2,
        changes=changes,
    )


# --- (d) a rolling upgrade of the announcers --------------------------------


def test_a_helm_upgrade_rolling_every_announcer_fails_no_new_connection(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    steady(exalb, web_pods, cluster_vip, local_vip)
    with (
        answering(exalb, "upgrade", Cluster=cluster_vip, Local=local_vip) as runs,
        route_log(exalb, cluster_vip.prefix) as changes,
    ):
        event = time.time()
        samples = roll_announcers(exalb, cluster_vip.prefix, "t")
        steady(exalb, web_pods, cluster_vip, local_vip)
        done = time.time()
        runs["Cluster"].wait_until("2 s of requests after", _started_after(done + 2), 10)
    assert 1 in samples, f"no sample caught a node's routes withdrawn: {sorted(set(samples))}"
    for name, c in runs.items():
        o = outage(c.records(), event)
        _record(f"(d) {name}, helm upgrade rolls the announcers", o, f"{done - event:.1f}s rollout")
    for c in runs.values():
        o = outage(c.records(), event)
        assert o.new_failed == 0, f"{o.line()}\n{timeline(c.records(), event, changes)}"


# --- (e) an announcer crashes -----------------------------------------------


def _container_id(bed: Bed, namespace: str, selector: str, node: str, container: str) -> str:
    pods = json.loads(bed.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    (pod,) = [p for p in pods["items"] if p["spec"].get("nodeName") == node]
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == container]
    return str(status["containerID"])


def test_an_announcer_sigkilled_is_restarted_and_its_node_announces_again(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    steady(exalb, web_pods, cluster_vip, local_vip)
    node, other = exalb.nodes
    announcer = _container_id(exalb, SYSTEM, ANNOUNCERS, node.name, "announcer")
    with answering(exalb, "sigkill", Cluster=cluster_vip, Local=local_vip) as runs:
        event = time.time()
        node.kill_container(announcer)
        wait_next_hops(exalb, cluster_vip.prefix, {other.address}, timeout=10)
        withdrawn = time.time()
        steady(exalb, web_pods, cluster_vip, local_vip)
        announced = time.time()
        runs["Cluster"].wait_until("2 s of requests after", _started_after(announced + 2), 10)
    _failures_end_by(
        "(e) {}, an announcer SIGKILLed",
        runs,
        event,
        f"FRR withdrew its node +{withdrawn - event:.2f}s, "
        f"announced again +{announced - event:.2f}s",
        bound=announced - event + 2,
    )


# --- (g) the allocator leader dies ------------------------------------------


def _lease(bed: Bed) -> dict[str, Any]:
    spec = json.loads(bed.kubectl("get", "lease", "-n", SYSTEM, "exalb-allocator", "-o", "json"))
    return dict(spec["spec"])


def test_killing_the_allocator_leader_leaves_every_address_answering(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    steady(exalb, web_pods, cluster_vip, local_vip)
    lease = _lease(exalb)
    leader = json.loads(
        exalb.kubectl("get", "pod", "-n", SYSTEM, lease["holderIdentity"], "-o", "json")
    )
    node = next(n for n in exalb.nodes if n.name == leader["spec"]["nodeName"])
    allocator = _container_id(exalb, SYSTEM, ANNOUNCERS, node.name, "allocator")
    with answering(exalb, "leader", Cluster=cluster_vip, Local=local_vip) as runs:
        event = time.time()
        node.kill_container(allocator)
        wait_for(
            "a leader renewing the Lease again",
            lambda: _lease(exalb).get("renewTime") != lease.get("renewTime"),
            timeout=60,
            interval=0.5,
        )
        led = time.time()
        # A whole lease duration (15 s) and more: whoever leads next, nothing may move.
        runs["Cluster"].wait_until(
            "20 s of requests after the kill", _started_after(event + 20), 30
        )
    for vip in (cluster_vip, local_vip):
        assert next_hops(exalb, vip.prefix) == set(addresses(exalb).values())
    for name, c in runs.items():
        o = outage(c.records(), event)
        _record(
            f"(g) {name}, the allocator leader SIGKILLed",
            o,
            f"a leader renewed +{led - event:.1f}s ({_lease(exalb)['holderIdentity']})",
        )
    for c in runs.values():
        o = outage(c.records(), event)
        assert o.failed == 0, f"{o.line()}\n{timeline(c.records(), event)}"


# --- (f) a node is lost -----------------------------------------------------


def _hold_time(bed: Bed, node: Node) -> float:
    assert bed.router is not None
    return float(bed.router.neighbor_raw(node.address)["bgpTimerHoldTimeMsecs"]) / 1000


def test_a_frozen_node_loses_local_requests_until_the_router_s_hold_time_expires(
    exalb: Bed, web_pods: str, local_vip: Vip
) -> None:
    """A hung node (every process stopped, its kernel still forwarding) that no BFD watches.

    Only the Local address is measured: Cluster traffic entering the live node is
    also sent to the frozen node's pod until Kubernetes marks that node NotReady
    (tens of seconds), which is kube-proxy's part, not exalb's.
    """
    steady(exalb, web_pods, local_vip)
    lost, other = exalb.nodes
    hold = _hold_time(exalb, lost)
    with answering(exalb, "frozen", Local=local_vip) as runs:
        c = runs["Local"]
        event = time.time()
        try:
            lost.freeze()
            wait_next_hops(exalb, local_vip.prefix, {other.address}, timeout=hold + 15)
            withdrawn = time.time()
            c.wait_until("2 s of requests after the withdrawal", _started_after(withdrawn + 2), 10)
        finally:
            lost.thaw()
        thawed = time.time()
        steady(exalb, web_pods, local_vip)
        announced = time.time()
        c.wait_until("2 s of requests after", _started_after(announced + 2), 10)
    records = c.records()
    frozen = outage(records, event, until=thawed)
    _record(
        "(f) Local, a node frozen (no BFD)",
        frozen,
        f"hold time {hold:.0f}s, FRR withdrew the node +{withdrawn - event:.2f}s",
    )
    back = outage(records, thawed)
    _record("(f) Local, the node thawed", back, f"announced again +{announced - thawed:.2f}s")
    assert frozen.failed > 0, "the frozen node's share of the requests failed"
    assert frozen.last_failure is not None and frozen.last_failure <= hold + 1.5, frozen.line()
    settled = [r for r in records if withdrawn + 0.5 < r.start < thawed]
    assert settled and all(r.ok and r.node == other.name for r in settled)
