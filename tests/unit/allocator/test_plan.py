from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from allocator.core.plan import Allocated, Failed, PoolSpec, make_plan
from exalb.assignments import Advertisement, Assignment
from tests.unit.allocator.builders import svc

SHARE = {"exalb.io/allow-shared-ip": "k"}


def pool(
    name: str, *addresses: str, created: str = "2026-01-01T00:00:00Z", **spec: Any
) -> PoolSpec:
    return PoolSpec(name, {"addresses": list(addresses), **spec}, created)


def ips(plan: Any, key: str) -> tuple[str, ...]:
    res = plan.results[key]
    assert isinstance(res, Allocated), res
    return res.ips


def failed(plan: Any, key: str) -> Failed:
    res = plan.results[key]
    assert isinstance(res, Failed), res
    return res


P = pool("p", "198.51.100.0/30")


def test_oldest_gets_lowest_and_restart_keeps_everything() -> None:
    a = svc("a", created="2026-01-01T00:00:01Z")
    b = svc("b", created="2026-01-01T00:00:02Z")
    plan = make_plan([b, a], [P])
    assert ips(plan, "default/a") == ("198.51.100.0",)
    assert ips(plan, "default/b") == ("198.51.100.1",)
    # After a restart, status is the truth even when it is not what a fresh plan would pick.
    a2 = svc("a", created="2026-01-01T00:00:01Z", ingress=("198.51.100.3",), pool="p")
    b2 = svc("b", created="2026-01-01T00:00:02Z", ingress=("198.51.100.0",), pool="p")
    c = svc("c", created="2026-01-01T00:00:00Z")  # older but pending: may not steal
    plan2 = make_plan([c, b2, a2], [P])
    assert ips(plan2, "default/a") == ("198.51.100.3",)
    assert ips(plan2, "default/b") == ("198.51.100.0",)
    assert ips(plan2, "default/c") == ("198.51.100.1",)
    assert plan2.pools["p"].assigned == {4: 3} and plan2.pools["p"].capacity == {4: 4}


def test_requested_ip_free_taken_and_outside() -> None:
    holder = svc("holder", ingress=("198.51.100.2",), pool="p")
    want_free = svc("free", annotations={"exalb.io/loadBalancerIPs": "198.51.100.3"})
    want_taken = svc("taken", annotations={"exalb.io/loadBalancerIPs": "198.51.100.2"})
    want_out = svc("out", annotations={"exalb.io/loadBalancerIPs": "203.0.113.9"})
    plan = make_plan([holder, want_free, want_taken, want_out], [P])
    assert ips(plan, "default/free") == ("198.51.100.3",)
    f = failed(plan, "default/taken")
    assert f.reason == "IPInUse" and "held by default/holder" in f.message
    assert failed(plan, "default/out").reason == "IPNotInPool"


def test_pool_pinning_and_auto_assign_false() -> None:
    manual = pool("manual", "203.0.113.0/30", autoAssign=False)
    plan = make_plan(
        [
            svc("auto"),
            svc("pinned", annotations={"exalb.io/address-pool": "manual"}),
            svc("ghost", annotations={"exalb.io/address-pool": "nope"}),
        ],
        [P, manual],
    )
    assert ips(plan, "default/auto") == ("198.51.100.0",)
    assert ips(plan, "default/pinned") == ("203.0.113.0",)
    assert failed(plan, "default/ghost").reason == "PoolNotFound"
    only_manual = make_plan([svc("auto")], [manual])
    assert failed(only_manual, "default/auto").reason == "NoPool"


def test_sharing_allowed_and_refused() -> None:
    a = svc("a", created="1", annotations=SHARE, ports=(80,))
    b = svc("b", created="2", annotations=SHARE, ports=(443,))
    c = svc("c", created="3", annotations=SHARE, ports=(80,))  # port clash with a
    d = svc("d", created="4", annotations={"exalb.io/allow-shared-ip": "other"}, ports=(53,))
    plan = make_plan([a, b, c, d], [P])
    assert ips(plan, "default/a") == ips(plan, "default/b") == ("198.51.100.0",)
    assert ips(plan, "default/c") == ("198.51.100.1",)
    assert ips(plan, "default/d") == ("198.51.100.2",)
    assert plan.pools["p"].assigned == {4: 3}
    # requesting a held IP that is not shareable names the holder and the rule
    e = svc(
        "e",
        created="5",
        annotations={**SHARE, "exalb.io/loadBalancerIPs": "198.51.100.0"},
        ports=(80,),
    )
    f = failed(make_plan([a, b, e], [P]), "default/e")
    assert f.reason == "IPInUse" and "ports overlap (TCP/80)" in f.message


def test_local_services_share_only_with_identical_selectors() -> None:
    a = svc("a", created="1", annotations=SHARE, etp="Local", selector={"app": "x"}, ports=(80,))
    b = svc("b", created="2", annotations=SHARE, etp="Local", selector={"app": "x"}, ports=(81,))
    c = svc("c", created="3", annotations=SHARE, etp="Local", selector={"app": "y"}, ports=(82,))
    d = svc("d", created="4", annotations=SHARE, etp="Cluster", ports=(83,))
    plan = make_plan([a, b, c, d], [P])
    assert ips(plan, "default/a") == ips(plan, "default/b")
    assert ips(plan, "default/c") != ips(plan, "default/a")
    assert ips(plan, "default/d") not in (ips(plan, "default/a"), ips(plan, "default/c"))


def test_priority_and_selectors() -> None:
    general = pool("general", "198.51.100.0/30")
    low = pool("low", "203.0.113.0/30", serviceAllocation={"priority": 20, "namespaces": ["team"]})
    high = pool(
        "high", "203.0.113.8/30", serviceAllocation={"priority": 10, "namespaces": ["team"]}
    )
    bylabel = pool(
        "bylabel",
        "203.0.113.16/30",
        serviceAllocation={"serviceSelectors": [{"matchLabels": {"tier": "gold"}}]},
    )
    byns = pool(
        "byns",
        "203.0.113.24/30",
        serviceAllocation={"namespaceSelectors": [{"matchLabels": {"env": "prod"}}]},
    )
    plan = make_plan(
        [svc("t", ns="team"), svc("g", labels={"tier": "gold"}), svc("x"), svc("n", ns="shop")],
        [general, low, high, bylabel, byns],
        namespaces={"shop": {"env": "prod"}},
    )
    assert ips(plan, "team/t") == ("203.0.113.8",)
    assert ips(plan, "default/g") == ("203.0.113.16",)
    assert ips(plan, "default/x") == ("198.51.100.0",)
    assert ips(plan, "shop/n") == ("203.0.113.24",)


def test_exhaustion_then_freeing() -> None:
    tiny = pool("tiny", "198.51.100.8/31")
    a, b, c = svc("a", created="1"), svc("b", created="2"), svc("c", created="3")
    plan = make_plan([a, b, c], [tiny])
    f = failed(plan, "default/c")
    assert f.reason == "PoolExhausted" and "no available IPs in pool(s) tiny" in f.message
    a_done = svc("a", created="1", ingress=ips(plan, "default/a"), pool="tiny")
    plan2 = make_plan([a_done, c], [tiny])  # b was deleted
    assert ips(plan2, "default/c") == ("198.51.100.9",)
    assert ips(plan2, "default/a") == ("198.51.100.8",)


def test_pool_shrink_moves_only_what_fell_out() -> None:
    before = pool("p", "198.51.100.0/29")
    after = pool("p", "198.51.100.0/30")
    kept = svc("kept", created="1", ingress=("198.51.100.1",), pool="p")
    lost = svc("lost", created="2", ingress=("198.51.100.6",), pool="p")
    assert ips(make_plan([kept, lost], [before]), "default/lost") == ("198.51.100.6",)
    plan = make_plan([kept, lost], [after])
    assert ips(plan, "default/kept") == ("198.51.100.1",)
    moved = plan.results["default/lost"]
    assert isinstance(moved, Allocated)
    assert moved.ips == ("198.51.100.0",) and moved.previous == ("198.51.100.6",)
    assert "198.51.100.6 is no longer in any pool" in moved.why_moved


def test_overlapping_newer_pool_is_refused_and_nothing_moves() -> None:
    old = pool("old", "198.51.100.0/30", created="2026-01-01T00:00:00Z")
    new = pool("new", "198.51.100.2-198.51.100.9", created="2026-02-01T00:00:00Z")
    a = svc("a", ingress=("198.51.100.2",), pool="old")
    plan = make_plan([a, svc("b", annotations={"exalb.io/address-pool": "new"})], [new, old])
    assert plan.pools["new"].reason == "Overlapping" and "'old'" in plan.pools["new"].message
    assert plan.pools["old"].ready
    assert ips(plan, "default/a") == ("198.51.100.2",)
    assert failed(plan, "default/b").reason == "PoolNotReady"


def test_broken_pool_freezes_its_services_with_their_last_announcement() -> None:
    broken = PoolSpec("p", {"addresses": ["not-a-cidr"]})
    a = svc("a", ingress=("198.51.100.1",), pool="p")
    prev = {
        "default.a": Assignment(
            "default",
            "a",
            "u",
            ("198.51.100.1",),
            "p",
            advertisements=(Advertisement(communities=("65000:7",)),),
        )
    }
    plan = make_plan([a, svc("b")], [broken], previous=prev)
    res = plan.results["default/a"]
    assert isinstance(res, Allocated) and res.frozen and res.ips == ("198.51.100.1",)
    assert plan.assignments["default.a"].advertisements[0].communities == ("65000:7",)
    assert plan.pools["p"].reason == "InvalidAddresses"
    assert failed(plan, "default/b").reason == "NoPool"


def test_local_is_always_host_route_and_ads_come_from_pool() -> None:
    agg = pool(
        "p",
        "198.51.100.0/24",
        bgpAdvertisements=[{"aggregationLength": 24, "communities": ["65000:1"]}],
    )
    plan = make_plan([svc("l", etp="Local"), svc("c", created="9")], [agg])
    assert plan.assignments["default.l"].advertisements[0].aggregation_length == 32
    assert plan.assignments["default.c"].advertisements[0].aggregation_length == 24
    assert plan.assignments["default.l"].traffic_policy == "Local"
    assert plan.assignments["default.c"].advertisements[0].communities == ("65000:1",)


def test_not_ours_any_more_is_released() -> None:
    gone = svc("x", svc_type="ClusterIP", ingress=("198.51.100.0",), pool="p")
    plan = make_plan([gone, svc("y")], [P])
    assert "default/x" in plan.release and "default/x" not in plan.results
    assert ips(plan, "default/y") == ("198.51.100.0",)


def test_invalid_annotation_fails_only_that_service_and_keeps_existing_ip() -> None:
    bad_new = svc("bad", annotations={"exalb.io/loadBalancerIPs": "zzz"})
    bad_old = svc(
        "old", annotations={"exalb.io/loadBalancerIPs": "zzz"}, ingress=("198.51.100.3",), pool="p"
    )
    fine = svc("fine")
    plan = make_plan([bad_new, bad_old, fine], [P])
    assert failed(plan, "default/bad").reason == "InvalidAnnotation"
    assert ips(plan, "default/fine") == ("198.51.100.0",)
    # a malformed request on an allocated Service is reported but never moves its IP
    assert ips(plan, "default/old") == ("198.51.100.3",)


def test_avoid_buggy_ips() -> None:
    p = pool("p", "198.51.100.255-198.51.101.1", avoidBuggyIPs=True)
    plan = make_plan([svc("a", created="1"), svc("b", created="2")], [p])
    assert ips(plan, "default/a") == ("198.51.101.1",)
    assert failed(plan, "default/b").reason == "PoolExhausted"
    assert plan.pools["p"].capacity == {4: 1}


def test_dual_stack_from_one_pool() -> None:
    dual = pool("dual", "198.51.100.0/30", "2001:db8::/126")
    s = svc("d", families=("IPv4", "IPv6"), family_policy="RequireDualStack")
    plan = make_plan([s], [dual, P])
    assert ips(plan, "default/d") == ("198.51.100.0", "2001:db8::")
    only4 = failed(make_plan([s], [P]), "default/d")
    assert (only4.reason, only4.message) == (
        "PoolFamilyMismatch",
        "pool 'p' has no IPv6 addresses; the Service's ipFamilies are [IPv4, IPv6] "
        "(RequireDualStack)",
    )


def test_overlap_tie_on_creation_second_goes_to_the_pool_in_use() -> None:
    same = "2026-01-01T00:00:00Z"
    a_pool = pool("a-new", "198.51.100.0/29", created=same)
    z_pool = pool("z-old", "198.51.100.0/30", created=same)
    holder = svc("h", ingress=("198.51.100.1",), pool="z-old")
    plan = make_plan([holder], [a_pool, z_pool])
    assert plan.pools["z-old"].ready and plan.pools["a-new"].reason == "Overlapping"
    assert ips(plan, "default/h") == ("198.51.100.1",)


V4, V6 = ("198.51.100.0/29",), ("2001:db8::/125",)


@given(
    ranges=st.sampled_from([V4, V6, V4 + V6]),
    families=st.sampled_from([("IPv4",), ("IPv6",), ("IPv4", "IPv6"), ("IPv6", "IPv4")]),
    policy=st.sampled_from(["SingleStack", "PreferDualStack", "RequireDualStack"]),
    requested=st.booleans(),
)
def test_family_mismatch_is_named_and_only_then(
    ranges: tuple[str, ...], families: tuple[str, ...], policy: str, requested: bool
) -> None:
    """A pool lacking a needed family fails with that reason; any other request succeeds."""
    if policy == "SingleStack":
        families = families[:1]
    ann = {"exalb.io/address-pool": "fam"} if requested else {}
    s = svc("s", families=families, family_policy=policy, annotations=ann)
    res = make_plan([s], [pool("fam", *ranges)]).results["default/s"]
    have = {"IPv4" if r is V4[0] else "IPv6" for r in ranges}
    wanted = ["IPv4" if v == 4 else "IPv6" for v in s.families]  # as the API defaults them
    needed = wanted if policy == "RequireDualStack" else wanted[:1]
    missing = [f for f in needed if f not in have]
    if not missing:
        assert isinstance(res, Allocated)
    elif not requested and families[0] not in have:
        assert isinstance(res, Failed) and res.reason == "NoPool"  # no auto pool of that family
    else:
        assert isinstance(res, Failed) and res.reason == "PoolFamilyMismatch"
        assert f"has no {' or '.join(missing)} addresses" in res.message
        assert f"ipFamilies are [{families[0]}" in res.message
