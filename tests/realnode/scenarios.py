"""Failure scenarios with real traffic through a Service address, for either address family.

The client (testbed.traffic, in the bed's client namespace) opens a new
connection per request to a Service address; the router forwards by the
routes FRR installed in its kernel; kube-proxy on the node that receives the
packet delivers it to a web pod, which answers with its pod, its node and the
source address it saw. Each scenario asserts on that record, not on what exalb
believes, starts from every node announcing the address and leaves it so.
test_traffic.py runs them on IPv4 addresses, test_traffic_v6.py on IPv6 ones
and test_bfd_failover.py with BFD; the figures gather in :data:`FIGURES`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from testbed.node import Node
from testbed.nodes import Bed, pod_cidr
from testbed.procs import wait_for
from testbed.traffic import Client, Outage, Request, client, outage

from .chart import (
    ANNOUNCERS,
    SYSTEM,
    next_hops,
    pods_by_node,
    roll_announcers,
    service,
    wait_next_hops,
)
from .workloads import READY_FILE

INTERVAL = 0.1  # 10 new connections a second per client
# Seconds a request may take: one SYN retransmission (1 s) fits, so a starved CPU on the
# 2-core machine is not counted as a lost path; a black hole still is.
TIMEOUT = 2.0
FIGURES: dict[str, str] = {}


@dataclass(frozen=True)
class Vip:
    """A Service's address of one family, behind the web pods."""

    name: str
    policy: str  # the Service's externalTrafficPolicy
    prefix: str  # /32 or /128
    answered_after: float  # seconds from the Service's creation to the client's first answer

    @property
    def address(self) -> str:
        return self.prefix.split("/", maxsplit=1)[0]

    @property
    def family(self) -> int:
        return ipaddress.ip_network(self.prefix).version

    @property
    def label(self) -> str:
        """What the figures call it: the policy, with the family when it is IPv6."""
        return self.policy if self.family == 4 else f"IPv6 {self.policy}"

    def hop(self, node: Node) -> str:
        """The next hop ``node`` announces this address with: its own address of the family."""
        hop = node.address if self.family == 4 else node.address_v6
        if hop is None:
            raise ValueError(f"{node.name} has no IPv{self.family} address")
        return hop

    def hops(self, nodes: Sequence[Node]) -> set[str]:
        return {self.hop(n) for n in nodes}


def new_vip(bed: Bed, namespace: str, name: str, policy: str, family: int = 4) -> Vip:
    """Create the Service, then send requests to its address of ``family`` until one is
    answered.

    No request may meet a forwarding loop: the announcers hold a new address back until
    kube-proxy has programmed it (``announcer.holdNewAddresses``); announced sooner, the
    first requests circled between the router and a node until their TTL ran out."""
    created = time.time()
    prefix = service(bed, namespace, name, policy, family)
    with traffic(bed, prefix, f"{name}-v{family}-first") as c:
        c.wait_until("a first answer", lambda rs: any(r.ok for r in rs), timeout=60)
    records = c.records()
    first = next(r for r in records if r.ok)
    looped = [f"+{r.start - created:.2f}s {r.detail}" for r in records if "exceeded" in r.detail]
    assert not looped, "\n".join(looped[:10])
    return Vip(name, policy, prefix, first.start - created)


@contextmanager
def traffic(bed: Bed, prefix: str, run: str, **options: float) -> Iterator[Client]:
    path = bed.workdir / "traffic" / f"{run}.jsonl"
    path.parent.mkdir(exist_ok=True)
    # Bounds well past the longest scenario (a rollout): each scenario stops its client.
    bounds: dict[str, float] = {"count": 3000, "duration": 300, **options}
    address = prefix.split("/", maxsplit=1)[0]
    with client(
        bed.ns("client"), address, path, interval=INTERVAL, timeout=TIMEOUT, **bounds
    ) as started:
        yield started


@contextmanager
def answering(bed: Bed, run: str, *vips: Vip) -> Iterator[dict[str, Client]]:
    """A client per address (by its label), each already answered 20 times."""
    with ExitStack() as stack:
        runs = {
            vip.label: stack.enter_context(
                traffic(bed, vip.prefix, f"{run}-v{vip.family}-{vip.policy.lower()}")
            )
            for vip in vips
        }
        for c in runs.values():
            c.wait_until("answers", answered(20), timeout=20)
        yield runs


def answered(count: int) -> Any:
    return lambda records: sum(r.ok for r in records) >= count


def started_after(moment: float) -> Any:
    return lambda records: any(r.start > moment for r in records)


def steady(bed: Bed, namespace: str, *vips: Vip) -> dict[str, str]:
    """Every web pod Ready and every node announcing every address, in FRR's RIB and in its
    kernel (what the packets follow): before and after a scenario."""
    assert bed.router is not None
    router = bed.router
    pods = pods_by_node(bed, namespace, len(bed.nodes))
    for vip in vips:
        wait_next_hops(bed, vip.prefix, vip.hops(bed.nodes), timeout=90)
        wait_for(
            f"every node a next hop of {vip.prefix} in the router's kernel",
            lambda vip=vip: router.kernel_next_hops(vip.prefix) == vip.hops(bed.nodes),
            timeout=10,
            interval=0.1,
            on_timeout=lambda vip=vip: router.route_detail(vip.prefix),
        )
    return pods


def entry_node(bed: Bed, peer: str) -> str:
    """The node a Cluster request entered by: kube-proxy masquerades it to the address of the
    interface it leaves by, the node's own or its pod bridge's gateway."""
    for i, node in enumerate(bed.nodes, start=1):
        if peer in (node.address, str(ipaddress.ip_network(pod_cidr(i))[1])):
            return node.name
    raise AssertionError(f"{peer} is no node's address")


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
    """Per second after ``event``: answers, failures by outcome and phase, route changes;
    then the first failed requests whole, with the ICMP errors that explain them."""
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
    failed = [r for r in records if not r.ok and r.start >= event]
    lines += [f"failed +{r.start - event:.2f}s {r.outcome}: {r.detail}" for r in failed[:12]]
    return "\n".join(lines)


def failures_end_by(
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
        record(scenario.format(name), outage(c.records(), event), extra)
    for c in runs.values():
        o = outage(c.records(), event)
        explained = f"{o.line()}\n{timeline(c.records(), event, changes)}"
        assert o.last_failure is None or o.last_failure <= bound, explained


def record(scenario: str, o: Outage, extra: str = "") -> None:
    """Keep a scenario's figures, with the machine's 1-minute load average as they were taken."""
    load = f"load {os.getloadavg()[0]:.1f}"
    FIGURES[scenario] = o.line() + (f"; {extra}" if extra else "") + f"; {load}"
    print(f"\n{scenario}: {FIGURES[scenario]}")


# --- (c) a pod turns unready ------------------------------------------------


def pod_turns_unready(bed: Bed, web_pods: str, local_vip: Vip) -> None:
    """The unready pod's node withdraws the Local address; requests go to the other node."""
    pods = steady(bed, web_pods, local_vip)
    gone, other = bed.nodes
    with answering(bed, "unready", local_vip) as runs:
        c = runs[local_vip.label]
        event = time.time()
        bed.kubectl("exec", "-n", web_pods, pods[gone.name], "--", "rm", READY_FILE)
        wait_next_hops(bed, local_vip.prefix, {local_vip.hop(other)})
        withdrawn = time.time()
        c.wait_until("2 s of requests after the withdrawal", started_after(withdrawn + 2), 10)
        ready_again = time.time()
        bed.kubectl("exec", "-n", web_pods, pods[gone.name], "--", "touch", READY_FILE)
        steady(bed, web_pods, local_vip)
        announced = time.time()
        c.wait_until("2 s of requests after the announcement", started_after(announced + 2), 10)
    records = c.records()
    unready = outage(records, event, until=ready_again)
    label = local_vip.label
    record(f"(c) {label}, pod unready", unready, f"FRR withdrew the node +{withdrawn - event:.2f}s")
    back = outage(records, ready_again)
    record(f"(c) {label}, pod ready again", back, f"FRR announced +{announced - ready_again:.2f}s")
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


# --- (d) a rolling upgrade of the announcers --------------------------------


def helm_upgrade_rolls_the_announcers(
    bed: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    """Each announcer drains (withdraw, then Cease) before it goes: no new connection fails."""
    steady(bed, web_pods, cluster_vip, local_vip)
    with (
        answering(bed, "upgrade", cluster_vip, local_vip) as runs,
        route_log(bed, cluster_vip.prefix) as changes,
    ):
        event = time.time()
        samples = roll_announcers(bed, cluster_vip.prefix, "t")
        steady(bed, web_pods, cluster_vip, local_vip)
        done = time.time()
        runs[cluster_vip.label].wait_until("2 s of requests after", started_after(done + 2), 10)
    assert 1 in samples, f"no sample caught a node's routes withdrawn: {sorted(set(samples))}"
    for name, c in runs.items():
        o = outage(c.records(), event)
        record(f"(d) {name}, helm upgrade rolls the announcers", o, f"{done - event:.1f}s rollout")
    for c in runs.values():
        o = outage(c.records(), event)
        assert o.new_failed == 0, f"{o.line()}\n{timeline(c.records(), event, changes)}"


# --- (e) an announcer crashes -----------------------------------------------


def container_id(bed: Bed, namespace: str, selector: str, node: str, container: str) -> str:
    pods = json.loads(bed.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json"))
    (pod,) = [p for p in pods["items"] if p["spec"].get("nodeName") == node]
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == container]
    return str(status["containerID"])


def announcer_sigkilled(bed: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip) -> None:
    """The router drops the dead ExaBGP's session at once; the restarted one announces again."""
    steady(bed, web_pods, cluster_vip, local_vip)
    node, other = bed.nodes
    announcer = container_id(bed, SYSTEM, ANNOUNCERS, node.name, "announcer")
    with answering(bed, "sigkill", cluster_vip, local_vip) as runs:
        event = time.time()
        node.kill_container(announcer)
        wait_next_hops(bed, cluster_vip.prefix, {cluster_vip.hop(other)}, timeout=10)
        withdrawn = time.time()
        steady(bed, web_pods, cluster_vip, local_vip)
        announced = time.time()
        runs[cluster_vip.label].wait_until(
            "2 s of requests after", started_after(announced + 2), 10
        )
    failures_end_by(
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


def allocator_leader_killed(bed: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip) -> None:
    """Established addresses do not depend on a leader: nothing moves, nothing fails."""
    steady(bed, web_pods, cluster_vip, local_vip)
    lease = _lease(bed)
    leader = json.loads(
        bed.kubectl("get", "pod", "-n", SYSTEM, lease["holderIdentity"], "-o", "json")
    )
    node = next(n for n in bed.nodes if n.name == leader["spec"]["nodeName"])
    allocator = container_id(bed, SYSTEM, ANNOUNCERS, node.name, "allocator")
    with answering(bed, "leader", cluster_vip, local_vip) as runs:
        event = time.time()
        node.kill_container(allocator)
        wait_for(
            "a leader renewing the Lease again",
            lambda: _lease(bed).get("renewTime") != lease.get("renewTime"),
            timeout=60,
            interval=0.5,
        )
        led = time.time()
        # A whole lease duration (15 s) and more: whoever leads next, nothing may move.
        runs[cluster_vip.label].wait_until(
            "20 s of requests after the kill", started_after(event + 20), 30
        )
    for vip in (cluster_vip, local_vip):
        assert next_hops(bed, vip.prefix) == vip.hops(bed.nodes)
    for name, c in runs.items():
        o = outage(c.records(), event)
        record(
            f"(g) {name}, the allocator leader SIGKILLed",
            o,
            f"a leader renewed +{led - event:.1f}s ({_lease(bed)['holderIdentity']})",
        )
    for c in runs.values():
        o = outage(c.records(), event)
        assert o.failed == 0, f"{o.line()}\n{timeline(c.records(), event)}"


# --- (f) a node is lost -----------------------------------------------------


class Loss(NamedTuple):
    """When (epoch seconds) a node was lost, FRR withdrew it, it came back, FRR announced it."""

    event: float
    withdrawn: float
    restored: float
    announced: float


def lose_node(
    bed: Bed,
    web_pods: str,
    vip: Vip,
    counting: Client,
    lose: Callable[[], None],
    restore: Callable[[], None],
    timeout: float,
) -> Loss:
    """The first node lost (``lose``) while ``counting`` sends requests to ``vip``, until FRR
    has withdrawn it (within ``timeout``) and 2 s more; then ``restore`` it (whatever
    happened), until every node announces again and 2 s more."""
    other = bed.nodes[1]
    event = time.time()
    try:
        lose()
        wait_next_hops(bed, vip.prefix, {vip.hop(other)}, timeout=timeout)
        withdrawn = time.time()
        counting.wait_until(
            "2 s of requests after the withdrawal", started_after(withdrawn + 2), 10
        )
    finally:
        restore()
    restored = time.time()
    steady(bed, web_pods, vip)
    announced = time.time()
    counting.wait_until("2 s of requests after", started_after(announced + 2), 10)
    return Loss(event, withdrawn, restored, announced)


# --- (f) a node is lost: its link goes down ---------------------------------


def node_link_down(
    bed: Bed, web_pods: str, local_vip: Vip, run: str, how: str, bound: float
) -> None:
    """The first node's link to the router goes down, then up again (:meth:`Bed.cut_link`).

    Two clocks: bgpd keeps the node's path until its session fails (``bound``: the hold
    time, or BFD's detection time; ``how`` names it in the figures), but zebra takes the
    next hop out of the router's kernel as soon as the router's end of the link loses its
    carrier, and that is what the requests follow: their failures must end within a
    second of it. Once the link is back the node announces again. Only Local is judged,
    as for a frozen node: Cluster requests entering the live node still go to the lost
    node's pod until Kubernetes marks it NotReady, which is kube-proxy's part.
    """
    assert bed.router is not None
    steady(bed, web_pods, local_vip)
    lost, other = bed.nodes
    with (
        answering(bed, run, local_vip) as runs,
        route_log(bed, local_vip.prefix) as changes,
    ):
        c = runs[local_vip.label]
        loss = lose_node(
            bed, web_pods, local_vip, c, lambda: bed.cut_link(lost), lambda: bed.restore_link(lost),
            timeout=bound + 15,
        )  # fmt: skip
    event, withdrawn, restored, announced = loss
    records = c.records()
    down = outage(records, event, until=restored)
    kernel = next(
        (t - event for t, hops in changes if t > event and local_vip.hop(lost) not in hops), None
    )
    record(
        f"(f) {local_vip.label}, a node's link down, {how}",
        down,
        f"FRR withdrew the node +{withdrawn - event:.2f}s (RIB), "
        f"its kernel +{'-' if kernel is None else f'{kernel:.2f}'}s",
    )
    back = outage(records, restored)
    record(
        f"(f) {local_vip.label}, the link up again, {how}",
        back,
        f"announced again +{announced - restored:.2f}s",
    )
    explained = f"{down.line()}\n{timeline(records, event, changes)}"
    assert withdrawn - event <= bound, explained
    assert kernel is not None and kernel <= withdrawn - event + 0.5, explained
    assert down.last_failure is None or down.last_failure <= kernel + 1, explained
    settled = [r for r in records if withdrawn + 0.5 < r.start < restored]
    assert settled and all(r.ok and r.node == other.name for r in settled), settled
    assert back.last_failure is None or back.last_failure <= announced - restored + 2, (
        f"{back.line()}\n{timeline(records, restored, changes)}"
    )
