"""The core failure scenarios on IPv6: the client sends over IPv6 to a Service's IPv6 address.

The chart is installed with a dual-stack VIPPool and one BGPPeer per family (the
router's IPv4 and IPv6 addresses), so each node announces the /128 over its IPv6
session with its IPv6 address as next hop; FRR installs that route in its kernel
and forwards, kube-proxy (ip6tables) delivers to a pod. The Services are
PreferDualStack, as an operator would make them; only their IPv6 addresses are
measured here. The scenarios are test_traffic.py's own tests, the same code that
runs on IPv4 there; their figures join its in bench/TRAFFIC.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.dualstack import ROUTER_ADDRESS_V6
from testbed.nodes import Bed

from . import scenarios, test_traffic
from .chart import POOL, installed, wait_established
from .scenarios import FIGURES, Vip, new_vip

# The core scenarios: test_traffic.py's own test functions, collected here too, where
# they get this module's fixtures (its exalb, and the IPv6 addresses as the vips).
from .test_traffic import (  # noqa: F401
    test_a_helm_upgrade_rolling_every_announcer_fails_no_new_connection,
    test_a_pod_turning_unready_sends_local_requests_only_to_the_other_node,
    test_an_announcer_sigkilled_is_restarted_and_its_node_announces_again,
    test_killing_the_allocator_leader_leaves_every_address_answering,
)

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

POOLS = [POOL, "2001:db8:5::/124"]

# test_traffic.py's module fixtures, for this module's exalb: the web pods and the
# figures printed at the end.
web_pods = test_traffic.web_pods
figures = test_traffic.figures


@pytest.fixture(scope="module")
def exalb(bed: Bed) -> Iterator[Bed]:
    """The chart with a dual-stack pool and a BGPPeer per family, every IPv6 session up."""
    peers = {"router-v4": {}, "router-v6": {"peerAddress": ROUTER_ADDRESS_V6}}
    with installed(bed, peers, pool=POOLS) as running:
        wait_established(running, family=6)
        yield running


@pytest.fixture(scope="module")
def cluster_vip(exalb: Bed, web_pods: str) -> Vip:
    return new_vip(exalb, web_pods, "web-cluster", "Cluster", family=6)


@pytest.fixture(scope="module")
def local_vip(exalb: Bed, web_pods: str) -> Vip:
    return new_vip(exalb, web_pods, "web-local", "Local", family=6)


def test_ipv6_addresses_answer_through_the_router_from_every_node(
    exalb: Bed, web_pods: str, cluster_vip: Vip, local_vip: Vip
) -> None:
    assert exalb.router is not None
    for vip in (cluster_vip, local_vip):
        FIGURES[f"{vip.label}: Service created → first answer"] = f"{vip.answered_after:.2f}s"
        assert vip.answered_after < 20, vip
    scenarios.steady(exalb, web_pods, cluster_vip, local_vip)
    assert exalb.router.kernel_next_hops(cluster_vip.prefix) == cluster_vip.hops(exalb.nodes)
