"""A just-assigned address is held back until kube-proxy has had time to program it.

Properties, over any sequence of reads of a Service's entry: an address is never
announced before ``hold`` seconds after the read that first showed it; the addresses
of the first read are never held (a restarted announcer announces at once); once the
hold is over the Service is handed back for a new decision exactly once; an address
that leaves and comes back is new again.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.decide import NEW_ADDRESS_HELD, context, decide_service
from announcer.core.explain import explain
from announcer.core.model import Endpoint, Node, Options
from announcer.core.newaddresses import NewAddresses
from announcer.core.pools import pool_space
from announcer.core.report import decision_report, report_from
from exalb.assignments import Assignment
from exalb.bgppeer import Peer

HOLD = 2.0
V4, V6 = "198.51.100.1", "2001:db8:5::1"
OPTS = Options(node_name="n1", hold_new_addresses=HOLD)
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24", "2001:db8:5::/64"]})}
NODE = Node("n1", addresses=(("InternalIP", "192.0.2.11"), ("InternalIP", "2001:db8:1::11")))
PEER = Peer("tor", 64513, 64512, "127.1.0.1", dual_stack_address_family=True)
EPS = [Endpoint("n1")]
CTX = context(NODE, [PEER], OPTS, 0, POOLS)


def svc(*ips: str) -> Assignment:
    return Assignment("ns", "web", "u", ips, "pool")


def announced_prefixes(held: frozenset[str], *ips: str) -> set[str]:
    d = decide_service(CTX, svc(*ips), EPS, None, held)
    return set(d.routes.get("tor", {}))


def test_a_new_address_waits_for_the_hold_then_is_handed_back_once() -> None:
    new = NewAddresses(HOLD)
    new.start({})
    new.saw("ns.web", (V4,), now=100.0)
    assert new.held("ns.web", 100.0) == {V4}
    assert decide_service(CTX, svc(V4), EPS, None, new.held("ns.web", 100.0)).reason == (
        NEW_ADDRESS_HELD
    )
    assert new.next_release(100.0) == 102.0
    assert new.released(101.9) == set()
    assert new.released(102.0) == {"ns.web"}
    assert new.released(103.0) == set()  # once
    assert new.next_release(103.0) is None
    assert announced_prefixes(new.held("ns.web", 102.0), V4) == {f"{V4}/32"}


def test_what_the_first_read_finds_is_announced_at_once() -> None:
    new = NewAddresses(HOLD)
    new.start({"ns.web": (V4,)})
    new.saw("ns.web", (V4, V6), now=100.0)  # a second family added later is new
    assert new.held("ns.web", 100.0) == {V6}
    d = decide_service(CTX, svc(V4, V6), EPS, None, new.held("ns.web", 100.0))
    assert set(d.routes["tor"]) == {f"{V4}/32"} and d.reason == NEW_ADDRESS_HELD


def test_an_address_that_leaves_and_comes_back_is_new_again() -> None:
    new = NewAddresses(HOLD)
    new.start({"ns.web": (V4,)})
    new.saw("ns.web", None, now=100.0)
    new.saw("ns.web", (V4,), now=101.0)
    assert new.held("ns.web", 101.0) == {V4}


def test_zero_hold_never_holds() -> None:
    new = NewAddresses(0.0)
    new.start({})
    new.saw("ns.web", (V4,), now=100.0)
    assert new.held("ns.web", 100.0) == set() and new.next_release(100.0) is None


def test_a_full_read_forgets_services_gone_and_keeps_first_sightings() -> None:
    new = NewAddresses(HOLD)
    new.start({"ns.old": (V4,)})
    new.saw_all({"ns.web": (V6,)}, now=100.0)
    new.saw_all({"ns.web": (V6,)}, now=101.0)  # seen again: still since 100
    assert new.held_all(101.0) == {"ns.web": frozenset({V6})}
    assert new.held("ns.old", 101.0) == set() and new.until("ns.web") == 102.0


def test_explain_agrees_with_the_announcer_while_it_holds() -> None:
    report = decision_report(CTX, OPTS, [], "", held={"ns.web": (frozenset({V4}), 102.0)})
    back = report_from("n1", report)
    assert back is not None and back.options.hold_new_addresses == HOLD
    held = back.held["ns.web"]
    v = explain(NODE, [PEER], OPTS, 101.0, POOLS, svc(V4), EPS, held=held)
    assert not v.announced and v.reason == NEW_ADDRESS_HELD
    assert "kube-proxy" in v.evidence and "--hold-new-addresses 2s" in v.evidence
    after = explain(NODE, [PEER], OPTS, 102.5, POOLS, svc(V4), EPS, held=held)
    assert after.announced  # a report a moment old does not hold forever


reads = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0),  # seconds since the previous read
        st.sets(st.sampled_from([V4, V6, "198.51.100.2"]), max_size=3),
        st.booleans(),  # the entry is gone
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from([V4, V6])), reads)
def test_never_announced_before_the_hold_and_always_after(
    first: set[str], steps: list[tuple[float, set[str], bool]]
) -> None:
    new = NewAddresses(HOLD)
    new.start({"ns.web": tuple(sorted(first))} if first else {})
    first_seen = dict.fromkeys(first, float("-inf"))
    now = 100.0
    for gap, ips, gone in steps:
        wake = new.next_release(now)
        assert wake is None or now < wake <= now + HOLD  # never in the past, never late
        now += gap
        new.released(now)
        if gone:
            new.saw("ns.web", None, now)
            first_seen = {}
            continue
        new.saw("ns.web", tuple(sorted(ips)), now)
        first_seen = {ip: first_seen.get(ip, now) for ip in ips}
        held = new.held("ns.web", now)
        assert held == {ip for ip, at in first_seen.items() if now < at + HOLD}
        shown = announced_prefixes(held, *sorted(ips))
        assert {p.split("/")[0] for p in shown} == set(ips) - held
