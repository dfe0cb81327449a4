"""``core.explain``: the verdict is decide()'s, and every reason comes with its evidence."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core import decide
from announcer.core.explain import explain
from announcer.core.model import (
    EXCLUDE_LABEL,
    GRACEFUL_SHUTDOWN,
    Attrs,
    Drain,
    Endpoint,
    Node,
    NodeCommunity,
    Options,
)
from announcer.core.pools import pool_space
from announcer.core.report import decision_report, report_from
from exalb.assignments import Advertisement, Assignment, Degraded, LabelSelector
from exalb.bgppeer import Peer

OPTS = Options(node_name="n1")
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24"]})}
NODE = Node("n1", {"zone": "a"}, addresses=(("InternalIP", "192.0.2.11"),))
PEER = Peer("tor", 64513, 64512, "127.1.0.1")
HERE = (Endpoint("n1"),)


def svc(policy: str = "Cluster", ip: str = "198.51.100.1", **adv: object) -> Assignment:
    return Assignment("ns", "web", "u", (ip,), "pool", policy, (Advertisement(**adv),))  # type: ignore[arg-type]


def test_announced_names_its_peers_and_prefixes() -> None:
    v = explain(NODE, [PEER], OPTS, 0, POOLS, svc(), HERE)
    assert (v.announced, v.reason) == (True, None)
    assert v.routes == {"tor": {"198.51.100.1/32": Attrs("192.0.2.11")}}
    assert (v.degraded, v.graceful_shutdown) == ("", "")
    assert v.evidence == "announced to tor"
    assert (v.node_reason, v.node_peers) == (None, ("tor",))


@pytest.mark.parametrize(
    ("node", "peers", "a", "endpoints", "opts", "reason", "evidence"),
    [
        (None, [PEER], svc(), HERE, OPTS, decide.NODE_UNKNOWN, "no Node named 'n1'"),
        (
            replace(NODE, ready=False, ready_since=0),
            [PEER],
            svc(),
            HERE,
            OPTS,
            decide.NODE_NOT_READY,
            "Ready condition is not True (since 1970-01-01T00:00:00Z)",
        ),
        (
            replace(NODE, ready_since=95),
            [PEER],
            svc(),
            HERE,
            replace(OPTS, announce_delay=10),
            decide.NODE_READY_DELAY,
            "Ready for 5s, less than --announce-delay 10s (announces at 1970-01-01T00:01:45Z)",
        ),
        (
            replace(NODE, network_unavailable=True),
            [PEER],
            svc(),
            HERE,
            OPTS,
            decide.NODE_NETWORK_UNAVAILABLE,
            "NetworkUnavailable condition is True",
        ),
        (
            replace(NODE, labels={EXCLUDE_LABEL: ""}),
            [PEER],
            svc(),
            HERE,
            OPTS,
            decide.NODE_EXCLUDED,
            f"label {EXCLUDE_LABEL}",
        ),
        (
            NODE,
            [PEER],
            svc(node_selectors=(LabelSelector((("zone", "b"),)),)),
            HERE,
            OPTS,
            decide.NOT_OWNER,
            "labels {zone=a}: [{'matchLabels': {'zone': 'b'}}]",
        ),
        (
            NODE,
            [PEER],
            svc("Local"),
            (Endpoint("n1", ready=False, serving=False), Endpoint("n2")),
            OPTS,
            decide.NO_LOCAL_ENDPOINTS,
            "1 endpoint(s) on this node, none ready or serving while terminating; "
            "usable endpoints are on ['n2']",
        ),
        (
            NODE,
            [PEER],
            svc(),
            (Endpoint("n2", ready=False, serving=False),),
            OPTS,
            decide.NO_ENDPOINTS,
            "1 endpoint(s), none ready",
        ),
        (NODE, [], svc(), HERE, OPTS, decide.NO_PEERS, "there is no BGPPeer"),
        (
            NODE,
            [replace(PEER, node_selectors=(LabelSelector((("zone", "b"),)),))],
            svc(),
            HERE,
            OPTS,
            decide.NO_PEERS,
            "no BGPPeer's nodeSelectors select the Node's labels {zone=a}",
        ),
        (
            NODE,
            [replace(PEER, problem="passwordSecret 'x' is missing")],
            svc(),
            HERE,
            OPTS,
            decide.NO_PEERS,
            "cannot be used: tor: passwordSecret 'x' is missing",
        ),
        (
            NODE,
            [PEER],
            svc(peers=("other",)),
            HERE,
            OPTS,
            decide.NO_MATCHING_PEER,
            "name peers ['other']",
        ),
        (
            NODE,
            [PEER, replace(PEER, name="tor-mp", dual_stack_address_family=True)],
            svc(peers=("other",)),
            HERE,
            OPTS,
            decide.NO_MATCHING_PEER,
            "their sessions carry) are ['tor (IPv4)', 'tor-mp (IPv4+IPv6)']",
        ),
        (
            replace(NODE, addresses=()),
            [PEER],
            svc(),
            HERE,
            OPTS,
            "noIPv4NextHop",
            "no address of types ['InternalIP', 'ExternalIP']",
        ),
        (
            NODE,
            [PEER],
            svc(ip="203.0.113.9"),
            HERE,
            OPTS,
            "ipOutsidePool",
            "203.0.113.9 is not in VIPPool 'pool'",
        ),
        (
            NODE,
            [PEER],
            svc(aggregation_length=0),
            HERE,
            OPTS,
            "defaultRoute",
            "is a default route; never announced",
        ),
    ],
)
def test_each_reason_has_its_evidence(
    node: Node | None,
    peers: list[Peer],
    a: Assignment,
    endpoints: tuple[Endpoint, ...],
    opts: Options,
    reason: str,
    evidence: str,
) -> None:
    v = explain(node, peers, opts, 100, POOLS, a, endpoints)
    assert (v.announced, v.reason) == (False, reason)
    assert evidence in v.evidence, v.evidence


@given(
    ready=st.booleans(),
    excluded=st.booleans(),
    local=st.booleans(),
    endpoint_nodes=st.lists(st.sampled_from(["n1", "n2", None]), max_size=3),
    ready_endpoints=st.booleans(),
    peer_zone=st.sampled_from(["a", "b", None]),
    ip=st.sampled_from(["198.51.100.1", "203.0.113.1"]),
)
def test_the_verdict_is_decides(
    ready: bool,
    excluded: bool,
    local: bool,
    endpoint_nodes: list[str | None],
    ready_endpoints: bool,
    peer_zone: str | None,
    ip: str,
) -> None:
    """Whatever the inputs, explain() says what the announcer's decide() does."""
    labels = {"zone": "a", **({EXCLUDE_LABEL: ""} if excluded else {})}
    node = replace(NODE, ready=ready, labels=labels)
    selectors = (LabelSelector((("zone", peer_zone),)),) if peer_zone else ()
    peers = [replace(PEER, node_selectors=selectors)]
    a = svc("Local" if local else "Cluster", ip)
    endpoints = [
        Endpoint(n, ready=ready_endpoints, serving=ready_endpoints) for n in endpoint_nodes
    ]
    d = decide.decide(node, peers, [a], {"ns/web": endpoints}, OPTS, 0, POOLS)
    v = explain(node, peers, OPTS, 0, POOLS, a, endpoints)
    assert v.announced == (a.key in d.announced)
    assert v.reason == d.reasons.get(a.key)
    assert v.routes == {p: r for p, r in d.routes.items() if r}


GRADE = Degraded(med=500, as_path_prepend=2, communities=("64512:666",))
STANDBY = LabelSelector((("zone", "a"),))


@pytest.mark.parametrize(
    ("grade", "endpoints", "why"),
    [
        (replace(GRADE, node_selectors=(STANDBY,)), HERE, "degraded.nodeSelectors select the Node"),
        (GRADE, (Endpoint("n1", ready=False, serving=True, terminating=True),), "terminating"),
    ],
)
def test_degraded_routes_carry_the_graded_attributes_and_say_why(
    grade: Degraded, endpoints: tuple[Endpoint, ...], why: str
) -> None:
    v = explain(NODE, [PEER], OPTS, 0, POOLS, svc(med=100, degraded=grade), endpoints)
    assert why in v.degraded
    (attrs,) = v.routes["tor"].values()
    assert (attrs.med, attrs.communities) == (500, ("64512:666",))
    assert attrs.as_path == (64513, 64513, 64513)  # eBGP: the session's ASN and two copies


def test_healthy_node_of_a_graded_advertisement_is_not_degraded() -> None:
    v = explain(NODE, [PEER], OPTS, 0, POOLS, svc(med=100, degraded=GRADE), HERE)
    assert v.degraded == ""
    assert v.routes["tor"]["198.51.100.1/32"].med == 100


def test_graceful_shutdown_on_stop_and_on_a_drain_say_which() -> None:
    stopping = explain(NODE, [PEER], replace(OPTS, graceful_shutdown=True), 0, POOLS, svc(), HERE)
    assert "SIGTERM" in stopping.graceful_shutdown
    assert GRACEFUL_SHUTDOWN in stopping.routes["tor"]["198.51.100.1/32"].communities

    drains = replace(OPTS, drain=Drain(on_cordon=True, seconds=30))
    cordoned = replace(NODE, unschedulable=True)
    draining = explain(cordoned, [PEER], drains, 10, POOLS, svc(), HERE, drain_started=0)
    assert draining.graceful_shutdown.endswith("withdrawn at 1970-01-01T00:00:30Z")
    assert GRACEFUL_SHUTDOWN in draining.routes["tor"]["198.51.100.1/32"].communities
    drained = explain(cordoned, [PEER], drains, 31, POOLS, svc(), HERE, drain_started=0)
    assert (drained.reason, drained.graceful_shutdown) == (decide.NODE_DRAINED, "")


def test_node_large_community_and_link_bandwidth_are_the_decisions() -> None:
    opts = replace(OPTS, node_community=NodeCommunity(None, 7))
    two = (Endpoint("n1"), Endpoint("n1"))
    v = explain(NODE, [PEER], opts, 0, POOLS, svc("Local", mbps_per_endpoint=100), two)
    attrs = v.routes["tor"]["198.51.100.1/32"]
    assert attrs.large_communities == (f"64513:7:{(192 << 24) + (2 << 8) + 11}",)
    assert attrs.link_bandwidth == (64513, 2 * 100 * 125_000)


@pytest.mark.parametrize("tag", [None, NodeCommunity(), NodeCommunity(0, 7), NodeCommunity(42, 3)])
def test_the_decision_report_carries_the_flags_back(tag: NodeCommunity | None) -> None:
    """What the CLI decides with is the announcer's own Options, read back from its status."""
    opts = replace(
        OPTS,
        node_community=tag,
        drain=Drain(taints=frozenset({"maint"}), seconds=12),
        announce_delay=3,
        graceful_shutdown=True,
    )
    ctx = decide.context(NODE, [PEER], opts, 0, POOLS)
    report = report_from("n1", json.loads(json.dumps(decision_report(ctx, opts, (), "t"))))
    assert report is not None and report.options == opts
