"""A lost node with BFD: the router withdraws it within BFD's detection time, not its hold time.

Each node peers with the router's end of its own link (a BGPPeer per node,
selected by ``kubernetes.io/hostname``), so both BFD speakers are one hop
apart as RFC 5881 requires; FRR runs BFD for the peer group, single hop
(eBGP without ebgp-multihop), 300 ms x 3 on both sides. The figures join
test_traffic.py's in bench/TRAFFIC.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from testbed.nodes import Bed, router_end
from testbed.procs import wait_for
from testbed.traffic import outage

from . import scenarios, test_traffic
from .chart import announcer_metrics, installed
from .scenarios import FIGURES, Vip, answering, record, started_after, steady, timeline

# test_traffic.py's module fixtures, for this module's exalb: the web pods, the Services,
# and the figures printed at the end.
web_pods = test_traffic.web_pods
local_vip = test_traffic.local_vip
cluster_vip = test_traffic.cluster_vip
figures = test_traffic.figures

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

RX_MS = TX_MS = 300
MULTIPLIER = 3
DETECTION = RX_MS * MULTIPLIER / 1000


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart with one BFD BGPPeer per node, to the router's end of that node's link."""
    assert bed.router is not None
    bfd = {
        "minReceiveInterval": RX_MS,
        "minTransmitInterval": TX_MS,
        "detectMultiplier": MULTIPLIER,
    }
    peers = {
        f"link-{node.name}": {
            "peerAddress": router_end(k),
            "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": node.name}}],
            "bfd": bfd,
        }
        for k, node in enumerate(bed.nodes, start=1)
    }
    bed.router.enable_bfd([n.address for n in bed.nodes], RX_MS, TX_MS, MULTIPLIER)
    try:
        with installed(bed, peers) as running:
            yield running
    finally:
        bed.router.disable_bfd([n.address for n in bed.nodes])


def bfd_up_metric(bed: Bed, k: int) -> str:
    """The announcer's ``exalb_announcer_bfd_session_up`` lines, read from inside node k."""
    return announcer_metrics(bed, k, ["exalb_announcer_bfd_session_up"])


def test_bfd_comes_up_at_the_router_and_at_every_announcer(exalb: Bed, local_vip: Vip) -> None:
    assert exalb.router is not None
    router, nodes = exalb.router, {n.address for n in exalb.nodes}

    def up() -> bool:
        peers = exalb.router.bfd_peers() if exalb.router else {}
        return all(peers.get(a, {}).get("status") == "up" for a in nodes)

    wait_for("FRR's BFD peers Up", up, timeout=60, interval=0.5, on_timeout=router.log_tail)
    for peer in router.bfd_peers().values():
        assert peer["detect-multiplier"] == MULTIPLIER and peer["transmit-interval"] == TX_MS, peer
        assert "multihop" not in peer or not peer["multihop"], peer
    for k, node in enumerate(exalb.nodes, start=1):
        metric = bfd_up_metric(exalb, k)
        assert f'exalb_announcer_bfd_session_up{{peer="link-{node.name}"}} 1.0' in metric, metric


def test_a_node_whose_link_goes_down_is_withdrawn_within_bfd_s_detection_time(
    exalb: Bed, web_pods: str, local_vip: Vip
) -> None:
    """The BFD twin of test_traffic.py's link-down node."""
    how = f"BFD {RX_MS} ms x {MULTIPLIER}"
    scenarios.node_link_down(exalb, web_pods, local_vip, "bfd-link-down", how, DETECTION + 0.6)


def test_a_frozen_node_is_withdrawn_within_bfd_s_detection_time(
    exalb: Bed, web_pods: str, local_vip: Vip, cluster_vip: Vip
) -> None:
    """The no-BFD twin is test_traffic.py's frozen node; Cluster is measured too, but its
    requests entering the live node still reach the frozen node's pod (kube-proxy's part)."""
    assert exalb.router is not None
    steady(exalb, web_pods, local_vip, cluster_vip)
    lost, other = exalb.nodes
    with answering(exalb, "bfd-frozen", local_vip, cluster_vip) as runs:
        event = time.time()
        try:
            lost.freeze()
            wait_for(
                "FRR withdrew the frozen node",
                lambda: _hops(exalb, local_vip) == {other.address},
                timeout=20,
                interval=0.05,
            )
            withdrawn = time.time()
            local = runs[local_vip.label]
            local.wait_until("2 s of requests after", started_after(withdrawn + 2), 10)
        finally:
            lost.thaw()
        thawed = time.time()
        steady(exalb, web_pods, local_vip, cluster_vip)
        announced = time.time()
    bfd_down = exalb.router.bfd_peers().get(lost.address, {})
    extra = f"BFD {RX_MS} ms x {MULTIPLIER}, FRR withdrew the node +{withdrawn - event:.2f}s"
    for name, c in runs.items():
        record(f"(f) {name}, a node frozen, BFD", outage(c.records(), event, until=thawed), extra)
    FIGURES["(f) BFD: the thawed node announced again"] = f"+{announced - thawed:.1f}s"
    local = outage(runs[local_vip.label].records(), event, until=thawed)
    assert withdrawn - event <= 1.0 + 0.5, f"{extra}; FRR BFD {bfd_down}"
    assert local.last_failure is not None and local.last_failure <= DETECTION + 1.5, (
        f"{local.line()}\n{timeline(runs[local_vip.label].records(), event)}"
    )


def _hops(bed: Bed, vip: Vip) -> set[str]:
    assert bed.router is not None
    return {p.next_hop for p in bed.router.paths(vip.prefix)}
