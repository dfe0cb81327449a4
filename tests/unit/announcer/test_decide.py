"""The announce decision: MetalLB's rules, exalb's Local /32 rule, and peer selection."""

from __future__ import annotations

from announcer.core.decide import decide, node_problem, ready_at, unusable_peers
from announcer.core.model import (
    EXCLUDE_LABEL,
    GRACEFUL_SHUTDOWN,
    Attrs,
    Endpoint,
    Node,
    Options,
)
from announcer.core.pools import pool_space
from exalb.assignments import Advertisement, Assignment, LabelSelector
from exalb.bgppeer import Peer

OPTS = Options(node_name="n1")
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24", "2001:db8::/64"]})}
NODE = Node("n1", {"zone": "a"}, addresses=(("InternalIP", "192.0.2.11"),))
PEER = Peer("tor", 64513, 64512, "127.1.0.1")
IBGP = Peer("rr", 64513, 64513, "127.1.0.2")


def svc(
    policy: str = "Cluster", ips: tuple[str, ...] = ("198.51.100.1",), **adv: object
) -> Assignment:
    return Assignment("ns", "web", "u", ips, "pool", policy, (Advertisement(**adv),))  # type: ignore[arg-type]


def eps(*nodes: str | None, ready: bool = True) -> dict[str, list[Endpoint]]:
    return {"ns/web": [Endpoint(n, ready=ready, serving=ready) for n in nodes]}


def test_cluster_announces_when_any_endpoint_is_ready() -> None:
    d = decide(NODE, [PEER], [svc()], eps("n2"), OPTS, 0, POOLS)
    assert d.routes == {"tor": {"198.51.100.1/32": Attrs("192.0.2.11")}}
    assert d.announced == {"ns.web"}


def test_cluster_withdraws_without_ready_endpoints() -> None:
    d = decide(NODE, [PEER], [svc()], eps("n1", ready=False), OPTS, 0, POOLS)
    assert d.routes == {"tor": {}}
    assert d.reasons == {"ns.web": "noEndpoints"}


def test_local_needs_an_endpoint_on_this_node() -> None:
    assert decide(NODE, [PEER], [svc("Local")], eps("n2"), OPTS, 0, POOLS).reasons == {
        "ns.web": "noLocalEndpoints"
    }
    assert decide(NODE, [PEER], [svc("Local")], eps("n1"), OPTS, 0, POOLS).announced == {"ns.web"}


def test_serving_while_terminating_counts() -> None:
    e = {"ns/web": [Endpoint("n1", ready=False, serving=True, terminating=True)]}
    assert decide(NODE, [PEER], [svc("Local")], e, OPTS, 0, POOLS).announced == {"ns.web"}
    e = {"ns/web": [Endpoint("n1", ready=False, serving=True, terminating=False)]}
    assert decide(NODE, [PEER], [svc("Local")], e, OPTS, 0, POOLS).announced == set()


def test_local_is_always_a_host_route_cluster_aggregates() -> None:
    local = decide(NODE, [PEER], [svc("Local", aggregation_length=24)], eps("n1"), OPTS, 0, POOLS)
    assert list(local.routes["tor"]) == ["198.51.100.1/32"]
    cluster = decide(NODE, [PEER], [svc(aggregation_length=24)], eps("n1"), OPTS, 0, POOLS)
    assert list(cluster.routes["tor"]) == ["198.51.100.0/24"]


def test_node_conditions_and_exclusion_label() -> None:
    for node, reason in [
        (Node("n1", ready=False), "nodeNotReady"),
        (Node("n1", network_unavailable=True), "nodeNetworkUnavailable"),
        (Node("n1", {EXCLUDE_LABEL: ""}), "nodeLabeledExcludeBalancers"),
    ]:
        assert node_problem(node, OPTS, 0) == reason
        assert decide(node, [PEER], [svc()], eps("n1"), OPTS, 0, POOLS).reasons == {
            "ns.web": reason
        }
    opts = Options("n1", ignore_exclude_lb=True)
    assert node_problem(Node("n1", {EXCLUDE_LABEL: ""}), opts, 0) is None
    assert node_problem(None, OPTS, 0) == "nodeUnknown"


def test_announce_delay_after_ready() -> None:
    opts = Options("n1", announce_delay=10)
    node = Node("n1", ready_since=100.0)
    assert node_problem(node, opts, 105) == "nodeReadyDelay"
    assert node_problem(node, opts, 111) is None
    assert ready_at(node, opts) == 110


def test_peer_node_selectors_choose_sessions() -> None:
    other = Peer(
        "far", 64513, 64512, "127.1.0.3", node_selectors=(LabelSelector((("zone", "b"),)),)
    )
    d = decide(NODE, [PEER, other], [svc()], eps("n1"), OPTS, 0, POOLS)
    assert set(d.routes) == {"tor"}


def test_advertisement_selectors_and_peer_lists() -> None:
    off = svc(node_selectors=(LabelSelector((("zone", "b"),)),))
    assert decide(NODE, [PEER], [off], eps("n1"), OPTS, 0, POOLS).reasons == {"ns.web": "notOwner"}
    only_rr = svc(peers=("rr",))
    d = decide(NODE, [PEER, IBGP], [only_rr], eps("n1"), OPTS, 0, POOLS)
    assert d.routes["tor"] == {}
    assert list(d.routes["rr"]) == ["198.51.100.1/32"]


def test_attributes_local_pref_only_on_ibgp() -> None:
    s = svc(communities=("65000:2", "65000:1"), large_communities=("64512:1:2",), local_pref=150)
    d = decide(NODE, [PEER, IBGP], [s], eps("n1"), OPTS, 0, POOLS)
    ebgp = d.routes["tor"]["198.51.100.1/32"]
    ibgp = d.routes["rr"]["198.51.100.1/32"]
    assert ebgp == Attrs("192.0.2.11", ("65000:1", "65000:2"), ("64512:1:2",), None)
    assert ibgp.local_pref == 150


def test_graceful_shutdown_adds_the_community() -> None:
    d = decide(NODE, [PEER], [svc()], eps("n1"), Options("n1", graceful_shutdown=True), 0, POOLS)
    assert d.routes["tor"]["198.51.100.1/32"].communities == (GRACEFUL_SHUTDOWN,)


def test_shared_aggregate_merges_attributes() -> None:
    a = Assignment(
        "ns",
        "a",
        "u",
        ("198.51.100.1",),
        "pool",
        "Cluster",
        (Advertisement(24, communities=("1:1",), local_pref=100),),
    )
    b = Assignment(
        "ns",
        "b",
        "u",
        ("198.51.100.2",),
        "pool",
        "Cluster",
        (Advertisement(24, communities=("2:2",), local_pref=200),),
    )
    e = {"ns/a": [Endpoint("n1")], "ns/b": [Endpoint("n1")]}
    d = decide(NODE, [IBGP], [a, b], e, OPTS, 0, POOLS)
    assert d.routes["rr"] == {"198.51.100.0/24": Attrs("192.0.2.11", ("1:1", "2:2"), (), 200)}


def test_next_hop_override_and_missing_family() -> None:
    d = decide(NODE, [PEER], [svc()], eps("n1"), Options("n1", next_hop_v4="192.0.2.99"), 0, POOLS)
    assert d.routes["tor"]["198.51.100.1/32"].next_hop == "192.0.2.99"
    v6 = svc(ips=("2001:db8::1",))
    assert decide(NODE, [PEER], [v6], eps("n1"), OPTS, 0, POOLS).reasons == {
        "ns.web": "noIPv6NextHop"
    }


def test_ipv6_goes_to_ipv6_peers_only() -> None:
    node = Node("n1", addresses=(("InternalIP", "192.0.2.11"), ("InternalIP", "2001:db8:1::11")))
    p6 = Peer("tor6", 64513, 64512, "2001:db8::ff")
    s = svc(ips=("198.51.100.1", "2001:db8::1"))
    d = decide(node, [PEER, p6], [s], eps("n1"), OPTS, 0, POOLS)
    assert list(d.routes["tor"]) == ["198.51.100.1/32"]
    assert d.routes["tor6"] == {"2001:db8::1/128": Attrs("2001:db8:1::11")}


def test_no_peers_and_unusable_peers() -> None:
    bad = Peer("bad", 0, 0, "0.0.0.0", problem="missing secret")
    d = decide(NODE, [bad], [svc()], eps("n1"), OPTS, 0, POOLS)
    assert d.routes == {}
    assert d.reasons == {"ns.web": "noPeers"}


def test_unusable_peers_are_those_selecting_this_node_with_a_problem() -> None:
    missing = "passwordSecret 'tor-md5' is missing"

    def zone(z: str) -> tuple[LabelSelector, ...]:
        return (LabelSelector((("zone", z),)),)

    peers = [
        Peer("tor", 64513, 64512, "127.1.0.1", node_selectors=zone("a"), problem=missing),
        Peer("other-zone", 64513, 64512, "127.1.0.3", node_selectors=zone("b"), problem=missing),
        PEER,
        Peer("everywhere", 64513, 64512, "127.1.0.4", problem="invalid spec"),
    ]
    assert unusable_peers(peers, NODE) == {"everywhere": "invalid spec", "tor": missing}
    assert list(unusable_peers(peers, NODE)) == ["everywhere", "tor"]  # written in name order
    assert unusable_peers([PEER], NODE) == {}


def test_an_aggregated_ipv6_address_with_a_small_value_stays_ipv6() -> None:
    """'::' is the integer 0: built from the integer without its version it became 0.0.0.0/1."""
    node = Node("n1", addresses=(("InternalIP", "192.0.2.11"), ("InternalIP", "2001:db8:1::11")))
    p6 = Peer("tor6", 64513, 64512, "2001:db8::ff")
    pools = {"pool": pool_space({"addresses": ["::/0"]})}
    s = svc(ips=("::1",), aggregation_length_v6=1)
    d = decide(node, [p6], [s], eps("n1"), OPTS, 0, pools)
    assert list(d.routes["tor6"]) == ["::/1"]
