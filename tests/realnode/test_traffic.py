"""Real traffic through IPv4 Service addresses: what a client outside the cluster sees.

The scenarios themselves are in scenarios.py (test_traffic_v6.py runs the core
ones on IPv6 addresses). One release, two web pods (one per node) and two
Services (Cluster and Local) serve the whole module; each scenario starts from,
and leaves, every node announcing both addresses. The figures are printed at
the end of the module; bench/TRAFFIC.md holds one run's.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from testbed.node import Node
from testbed.nodes import Bed, client_address
from testbed.procs import wait_for
from testbed.traffic import Request, outage

from . import scenarios
from .chart import addresses, pods_by_node, wait_established, wait_next_hops
from .scenarios import (
    FIGURES,
    INTERVAL,
    Vip,
    answering,
    entry_node,
    failures_end_by,
    lose_node,
    new_vip,
    record,
    route_log,
    started_after,
    steady,
    traffic,
)
from .workloads import new_namespace, web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]


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
    return new_vip(exalb, web_pods, "web-cluster", "Cluster")


@pytest.fixture(scope="module")
def local_vip(exalb: Bed, web_pods: str) -> Vip:
    return new_vip(exalb, web_pods, "web-local", "Local")


def _requests(bed: Bed, vip: Vip, run: str, count: int) -> list[Request]:
    with traffic(bed, vip.prefix, run, count=count) as c:
        c.wait_until(f"{count} requests", lambda rs: len(rs) >= count, count * INTERVAL + 10)
    return c.records()


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
    scenarios.pod_turns_unready(exalb, web_pods, local_vip)


def test_a_deleted_pod_is_replaced_while_local_and_cluster_requests_are_counted(
    exalb: Bed, web_pods: str, local_vip: Vip, cluster_vip: Vip
) -> None:
    pods = steady(exalb, web_pods, local_vip, cluster_vip)
    gone, other = exalb.nodes
    with (
        answering(exalb, "deleted", local_vip, cluster_vip) as runs,
        route_log(exalb, cluster_vip.prefix) as changes,
    ):
        event = time.time()
        exalb.kubectl("delete", "pod", "-n", web_pods, pods[gone.name], "--wait=false")
        wait_next_hops(exalb, local_vip.prefix, {other.address})
        withdrawn = time.time()
        replaced = steady(exalb, web_pods, local_vip, cluster_vip)
        announced = time.time()
        runs[local_vip.label].wait_until("2 s of requests after", started_after(announced + 2), 10)
    assert replaced[gone.name] != pods[gone.name]
    failures_end_by(
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
    scenarios.helm_upgrade_rolls_the_announcers(exalb, web_pods, cluster_vip, local_vip)


# --- (e) an announcer crashes -----------------------------------------------


def test_an_announcer_sigkilled_is_restarted_and_its_node_announces_again(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    scenarios.announcer_sigkilled(exalb, web_pods, cluster_vip, local_vip)


# --- (g) the allocator leader dies ------------------------------------------


def test_killing_the_allocator_leader_leaves_every_address_answering(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    scenarios.allocator_leader_killed(exalb, web_pods, cluster_vip, local_vip)


# --- (f) a node is lost -----------------------------------------------------


def _hold_time(bed: Bed, node: Node) -> float:
    assert bed.router is not None
    return float(bed.router.neighbor_raw(node.address)["bgpTimerHoldTimeMsecs"]) / 1000


def test_a_node_whose_link_goes_down_is_withdrawn_within_the_hold_time(
    exalb: Bed, web_pods: str, local_vip: Vip
) -> None:
    """The node's one link to the router goes down, no BFD: the hold time bounds how long the
    router keeps the lost next hop; the router's own end of the link sees its carrier go."""
    hold = _hold_time(exalb, exalb.nodes[0])
    how = f"no BFD, hold time {hold:.0f}s"
    scenarios.node_link_down(exalb, web_pods, local_vip, "link-down", how, bound=hold + 0.5)


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
    with answering(exalb, "frozen", local_vip) as runs:
        c = runs[local_vip.label]
        loss = lose_node(exalb, web_pods, local_vip, c, lost.freeze, lost.thaw, timeout=hold + 15)
    event, withdrawn, thawed, announced = loss
    records = c.records()
    frozen = outage(records, event, until=thawed)
    record(
        "(f) Local, a node frozen (no BFD)",
        frozen,
        f"hold time {hold:.0f}s, FRR withdrew the node +{withdrawn - event:.2f}s",
    )
    back = outage(records, thawed)
    record("(f) Local, the node thawed", back, f"announced again +{announced - thawed:.2f}s")
    assert frozen.failed > 0, "the frozen node's share of the requests failed"
    assert frozen.last_failure is not None and frozen.last_failure <= hold + 1.5, frozen.line()
    settled = [r for r in records if withdrawn + 0.5 < r.start < thawed]
    assert settled and all(r.ok and r.node == other.name for r in settled)
