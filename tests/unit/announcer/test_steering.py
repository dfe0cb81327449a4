"""Graded announcements, drain, weighted ECMP and the node's large community, decided."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.decide import context, decide, decide_service, wake_at
from announcer.core.drain import DrainClock
from announcer.core.model import (
    GRACEFUL_SHUTDOWN,
    Drain,
    Endpoint,
    Node,
    NodeCommunity,
    Options,
    Routes,
)
from announcer.core.pools import pool_space
from exalb.assignments import Advertisement, Assignment, Degraded, LabelSelector
from exalb.bgppeer import Peer

POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24"]})}
NODE = Node("n1", {"zone": "a"}, addresses=(("InternalIP", "192.0.2.11"),))
EBGP = Peer("tor", 64513, 64512, "127.1.0.1")
IBGP = Peer("rr", 64513, 64513, "127.1.0.2")
PREFIX = "198.51.100.1/32"
GRADE = Degraded(local_pref=50, med=500, as_path_prepend=2, communities=("65000:666",))


def svc(policy: str = "Cluster", **adv: object) -> Assignment:
    return Assignment("ns", "web", "u", ("198.51.100.1",), "pool", policy, (Advertisement(**adv),))  # type: ignore[arg-type]


def ready(*nodes: str) -> list[Endpoint]:
    return [Endpoint(n) for n in nodes]


def terminating(*nodes: str) -> list[Endpoint]:
    return [Endpoint(n, ready=False, serving=True, terminating=True) for n in nodes]


def routes(
    a: Assignment, endpoints: list[Endpoint], node: Node = NODE, opts: Options | None = None
) -> dict[str, Routes]:
    opts = opts or Options("n1")
    d = decide(node, [EBGP, IBGP], [a], {"ns/web": endpoints}, opts, 0, POOLS)
    return d.routes


def test_terminating_only_node_is_degraded_not_withdrawn() -> None:
    r = routes(svc("Local", degraded=GRADE), terminating("n1"))
    ebgp, ibgp = r["tor"][PREFIX], r["rr"][PREFIX]
    assert (ebgp.med, ebgp.as_path, ebgp.local_pref) == (500, (64513, 64513, 64513), None)
    assert ebgp.communities == ("65000:666",)
    # iBGP: local-pref instead of prepending (its own ASN in the path would be a loop)
    assert (ibgp.med, ibgp.as_path, ibgp.local_pref) == (500, (), 50)


def test_ready_endpoints_keep_the_normal_attributes() -> None:
    r = routes(svc("Local", degraded=GRADE), ready("n1") + terminating("n1"))
    assert (r["tor"][PREFIX].med, r["tor"][PREFIX].as_path) == (None, ())


def test_without_degraded_terminating_endpoints_keep_full_preference() -> None:
    r = routes(svc("Local"), terminating("n1"))
    assert r["tor"][PREFIX].med is None


def test_standby_nodes_are_always_degraded() -> None:
    standby = Degraded(med=900, node_selectors=(LabelSelector((("zone", "a"),)),))
    assert routes(svc(degraded=standby), ready("n2"))["tor"][PREFIX].med == 900
    other = Node("n1", {"zone": "b"}, addresses=NODE.addresses)
    assert routes(svc(degraded=standby), ready("n2"), other)["tor"][PREFIX].med is None


def test_node_community_names_the_node_per_session_asn() -> None:
    opts = Options("n1", node_community=NodeCommunity())
    r = routes(svc(large_communities=("1:2:3",)), ready("n1"), opts=opts)
    assert r["tor"][PREFIX].large_communities == ("1:2:3", "64513:1:3221225995")
    fixed = Options("n1", node_community=NodeCommunity(4200000000, 9))
    assert routes(svc(), ready("n1"), opts=fixed)["tor"][PREFIX].large_communities == (
        "4200000000:9:3221225995",
    )
    v6_only = Node("n1", addresses=(("InternalIP", "2001:db8::1"),))
    assert context(v6_only, [EBGP], opts, 0, POOLS).node_id is None


@given(counts=st.dictionaries(st.sampled_from(["n1", "n2", "n3"]), st.integers(0, 20)))
def test_link_bandwidth_is_proportional_to_ready_local_endpoints(counts: dict[str, int]) -> None:
    endpoints = [Endpoint(n) for n, k in counts.items() for _ in range(k)]
    a = svc("Local", mbps_per_endpoint=10)
    d = decide_service(context(NODE, [EBGP], Options("n1"), 0, POOLS), a, endpoints)
    mine = counts.get("n1", 0)
    if mine == 0:
        assert d.reason == "noLocalEndpoints"
    else:
        assert d.routes["tor"][PREFIX].link_bandwidth == (64513, mine * 1_250_000)
    cluster = decide_service(
        context(NODE, [EBGP], Options("n1"), 0, POOLS), svc(mbps_per_endpoint=10), endpoints
    )
    assert all(a.link_bandwidth is None for r in cluster.routes.values() for a in r.values())


def test_four_byte_asn_uses_as_trans_in_the_bandwidth_community() -> None:
    peer = Peer("tor", 4200000000, 64512, "127.1.0.1")
    d = decide(
        NODE,
        [peer],
        [svc("Local", mbps_per_endpoint=1)],
        {"ns/web": ready("n1")},
        Options("n1"),
        0,
        POOLS,
    )
    assert d.routes["tor"][PREFIX].link_bandwidth == (23456, 125_000)


DRAIN = Drain(on_cordon=True, taints=frozenset({"maint"}), seconds=30)


def test_drain_adds_graceful_shutdown_then_withdraws() -> None:
    cordoned = Node("n1", addresses=NODE.addresses, unschedulable=True)
    opts = Options("n1", drain=DRAIN)
    during = decide(cordoned, [EBGP], [svc()], {"ns/web": ready("n1")}, opts, 110, POOLS)
    # decide() has no clock of its own: give it the drain's start through context()
    ctx = context(cordoned, [EBGP], opts, 110, POOLS, drain_started=100)
    assert ctx.graceful_shutdown and ctx.node_reason is None
    d = decide_service(ctx, svc(), ready("n1"))
    assert GRACEFUL_SHUTDOWN in d.routes["tor"][PREFIX].communities
    after = context(cordoned, [EBGP], opts, 130, POOLS, drain_started=100)
    assert after.node_reason == "nodeDrained"
    assert wake_at(cordoned, opts, 110, 100) == 130
    assert during.announced == {"ns.web"}  # without a start time there is no drain


@given(tainted=st.booleans(), cordoned=st.booleans(), on_cordon=st.booleans())
def test_only_a_configured_cordon_or_taint_drains(
    tainted: bool, cordoned: bool, on_cordon: bool
) -> None:
    node = Node(
        "n1",
        addresses=NODE.addresses,
        unschedulable=cordoned,
        taints=frozenset({"maint" if tainted else "other"}),
    )
    drain = Drain(on_cordon=on_cordon, taints=frozenset({"maint"}), seconds=30)
    ctx = context(node, [EBGP], Options("n1", drain=drain), 10, POOLS, drain_started=0)
    assert ctx.graceful_shutdown == (tainted or (cordoned and on_cordon))


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 5)), max_size=30))
def test_drain_clock_starts_at_the_first_sight_of_each_uninterrupted_drain(
    steps: list[tuple[bool, float]],
) -> None:
    clock, now, run_start = DrainClock(), 0.0, None
    for drained, dt in steps:
        now += dt
        run_start = (run_start if run_start is not None else now) if drained else None
        assert clock.observe(drained, now) == run_start
