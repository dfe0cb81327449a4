"""``exalbctl explain``'s core: past the decision (BFD, sessions), and the announcer's word.

The decision itself is ``announcer.core.explain``'s (tests/unit/announcer/test_explain.py);
the real announcers' agreement is in tests/integration/announcer.
"""

from __future__ import annotations

from typing import Any

import pytest

from announcer.core import decide
from announcer.core.decide import context
from announcer.core.model import GRACEFUL_SHUTDOWN, Drain, Endpoint, Node, NodeCommunity, Options
from announcer.core.pools import pool_space
from announcer.core.report import decision_report
from announcer.core.transitions import ANNOUNCED, WITHDRAWN
from exalb.assignments import Assignment
from exalb.bgppeer import Peer
from exalb.heartbeat import CLOCK_SKEW, Heartbeat
from exalbctl import exits
from exalbctl.core.explain import (
    AGREES,
    ANNOUNCER_NOT_RUNNING,
    BFD_DOWN,
    NO_REPORT,
    NOT_RUNNING,
    SESSION_DOWN,
    STALE,
    Explanation,
    explain_service,
)
from exalbctl.core.explain_view import explain_data, explain_tables
from exalbctl.output import render
from tests.unit.exalbctl.test_cli import cli

POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24"]})}
PEER = Peer("tor", 64513, 64512, "127.1.0.1")
WEB = Assignment("ns", "web", "uid-web", ("198.51.100.1",), "pool", "Local")
SINCE = "2026-11-30T09:00:00Z"


def node(name: str, ready: bool = True) -> Node:
    return Node(name, ready=ready, addresses=(("InternalIP", "192.0.2.11"),))


def status(
    name: str,
    n: Node | None = None,
    state: str = "up",
    bfd_down: tuple[str, ...] = (),
    unusable: dict[str, str] | None = None,
    peers: tuple[Peer, ...] = (PEER,),
) -> dict[str, Any]:
    """A BGPSessionStatus ``status`` as the announcer writes it, from its own context."""
    opts = Options(name)
    ctx = context(n if n is not None else node(name), peers, opts, 0, POOLS)
    return {
        "node": name,
        "updated": "2026-11-30T09:30:00Z",
        "peers": [{"name": "tor", "state": state, "lastError": "Connection refused"}],
        "unusablePeers": [{"name": k, "reason": v} for k, v in (unusable or {}).items()],
        "decision": decision_report(ctx, opts, bfd_down, SINCE),
    }


def event(node: str, reason: str, at: str, uid: str = "uid-web") -> dict[str, Any]:
    return {
        "reason": reason,
        "involvedObject": {"kind": "Service", "uid": uid},
        "source": {"host": node},
        "lastTimestamp": at,
    }


def run(
    statuses: dict[str, Any],
    events: list[dict[str, Any]] = (),  # type: ignore[assignment]
    nodes: dict[str, Node] | None = None,
    endpoints: tuple[Endpoint, ...] = (Endpoint("n1"),),
    heartbeats: dict[str, Heartbeat] | None = None,
    now: float | None = None,
) -> Explanation:
    nodes = nodes if nodes is not None else {"n1": node("n1"), "n2": node("n2")}
    return explain_service(
        "ns", "web", WEB, endpoints, nodes, [PEER], POOLS, statuses, events, heartbeats or {}, now
    )


def row(e: Explanation, name: str) -> Any:
    return next(n for n in e.nodes if n.node == name)


def test_every_node_agrees_and_the_service_is_announced() -> None:
    e = run({"n1": status("n1"), "n2": status("n2")})
    assert (row(e, "n1").announces, row(e, "n1").check, row(e, "n1").peers) == (True, "", ("tor",))
    assert (row(e, "n2").announces, row(e, "n2").check) == (False, decide.NO_LOCAL_ENDPOINTS)
    assert {n.announcer for n in e.nodes} == {AGREES}
    assert e.problems == ()


def test_no_assignment_is_a_problem_with_no_rows() -> None:
    e = explain_service("ns", "gone", None, (), {"n1": node("n1")}, [PEER], POOLS, {}, [], {})
    assert e.nodes == () and "no assignment published for ns/gone" in e.problems[0]


@pytest.mark.parametrize(
    ("report", "check", "evidence"),
    [
        ({"state": "down"}, SESSION_DOWN, "session with peer tor is down: Connection refused"),
        ({"bfd_down": ("tor",)}, BFD_DOWN, "BFD with peer tor is down"),
    ],
)
def test_a_decided_route_that_does_not_leave_the_node(
    report: dict[str, Any], check: str, evidence: str
) -> None:
    e = run({"n1": status("n1", **report), "n2": status("n2")})
    r = row(e, "n1")
    assert (r.announces, r.check, r.peers) == (False, check, ())
    assert evidence in r.evidence
    assert e.problems == ("Service ns/web is announced by no node",)


def test_the_node_reports_the_peer_it_cannot_use() -> None:
    unusable = {"tor": "passwordSecret 'md5' is missing"}
    e = run({"n1": status("n1", unusable=unusable, peers=()), "n2": status("n2")})
    r = row(e, "n1")
    assert (r.check, r.announcer) == (decide.NO_PEERS, AGREES)
    assert "tor: passwordSecret 'md5' is missing" in r.evidence


def test_an_announcer_that_missed_its_node_turning_not_ready_is_stale() -> None:
    nodes = {"n1": node("n1", ready=False), "n2": node("n2")}
    e = run({"n1": status("n1"), "n2": status("n2")}, nodes=nodes)
    r = row(e, "n1")
    assert (r.check, r.announcer) == (decide.NODE_NOT_READY, STALE)
    assert "reports the node as eligible; the API's objects say nodeNotReady" in r.announcer_detail
    assert any("n1: its announcer is stale" in p for p in e.problems)


def test_an_announcer_running_other_peers_is_stale() -> None:
    e = run({"n1": status("n1", peers=()), "n2": status("n2")})
    assert row(e, "n1").announcer == STALE
    assert "it runs sessions for peers []" in row(e, "n1").announcer_detail


def test_no_status_is_no_announcer_a_problem_only_where_the_code_announces() -> None:
    e = run({})
    assert (row(e, "n1").announcer, row(e, "n2").announcer) == (NOT_RUNNING, NO_REPORT)
    assert row(e, "n1").announces  # the code's word: nothing contradicts it but the session
    assert any("n1: its announcer is notRunning" in p for p in e.problems)
    assert not any("n2" in p for p in e.problems)


def test_a_status_without_a_decision_report_is_no_report() -> None:
    old = status("n1")
    del old["decision"]
    assert row(run({"n1": old, "n2": status("n2")}), "n1").announcer == NO_REPORT


@pytest.mark.parametrize(
    ("events", "announcer"),
    [
        ([event("n1", ANNOUNCED, "2026-11-30T09:10:00Z")], AGREES),
        ([event("n1", WITHDRAWN, "2026-11-30T09:10:00Z")], STALE),
        # the latest wins, whatever the list order
        (
            [
                event("n1", ANNOUNCED, "2026-11-30T09:20:00Z"),
                event("n1", WITHDRAWN, "2026-11-30T09:10:00Z"),
            ],
            AGREES,
        ),
        ([event("n1", WITHDRAWN, "2026-11-30T08:59:00Z")], AGREES),  # before eventsSince
        ([event("n1", WITHDRAWN, "2026-11-30T09:10:00Z", uid="other")], AGREES),  # namesake
        ([event("n2", WITHDRAWN, "2026-11-30T09:10:00Z")], AGREES),  # another node's
    ],
)
def test_the_last_event_of_the_node_is_its_word_on_the_service(
    events: list[dict[str, Any]], announcer: str
) -> None:
    e = run({"n1": status("n1"), "n2": status("n2")}, events)
    assert row(e, "n1").announcer == announcer, row(e, "n1").announcer_detail


def test_a_node_with_a_status_and_no_node_object_is_unknown() -> None:
    e = run({"n1": status("n1"), "n3": status("n3")})
    assert row(e, "n3").check == decide.NODE_UNKNOWN


def test_table_and_json() -> None:
    e = run({"n1": status("n1"), "n2": status("n2")})
    table = render(explain_data(e), explain_tables(e), "table")
    assert "Service ns/web (198.51.100.1 from pool pool, Local):" in table
    assert "n1    yes" in table and "noLocalEndpoints" in table
    data = explain_data(e)
    assert data["nodes"][0] == {
        "node": "n1",
        "announces": True,
        "check": "",
        "evidence": "announced to tor",
        "peers": ["tor"],
        "announcer": AGREES,
        "announcerDetail": "reported at 2026-11-30T09:30:00Z",
        "heartbeat": {"state": "missing", "age": None},
        "routes": [
            {
                "peer": "tor",
                "prefix": "198.51.100.1/32",
                "nextHop": "192.0.2.11",
                "communities": [],
                "largeCommunities": [],
                "localPref": None,
                "med": None,
                "asPath": [],
                "linkBandwidth": None,
            }
        ],
        "degraded": "",
        "gracefulShutdown": "",
    }
    assert "n1    tor   198.51.100.1/32  -      next-hop 192.0.2.11" in table


def test_attributes_use_the_node_large_community_its_announcer_reports() -> None:
    opts = Options("n1", node_community=NodeCommunity(None, 9))
    st = status("n1")
    st["decision"] = decision_report(context(node("n1"), (PEER,), opts, 0, POOLS), opts, (), SINCE)
    r = row(run({"n1": st, "n2": status("n2")}), "n1")
    (attrs,) = r.routes["tor"].values()
    assert attrs.large_communities == (f"64513:9:{(192 << 24) + (2 << 8) + 11}",)
    assert r.announcer == AGREES


def test_the_service_must_be_namespace_slash_name() -> None:
    code, _, err = cli("explain", "web", "--kubeconfig", "/nonexistent")
    assert code == exits.USAGE and "is not NAMESPACE/SERVICE" in err


def test_a_drained_node_is_explained_with_the_announcers_drain_start() -> None:
    """The CLI cannot see when a cordon began; the announcer's report tells it."""
    drain = Drain(on_cordon=True, seconds=30)
    cordoned = Node("n1", unschedulable=True, addresses=(("InternalIP", "192.0.2.11"),))
    opts = Options("n1", drain=drain)
    for now, reason in ((110.0, None), (200.0, decide.NODE_DRAINED)):
        ctx = context(cordoned, (PEER,), opts, now, POOLS, drain_started=100.0)
        st = status("n1", cordoned)
        st["decision"] = decision_report(ctx, opts, (), SINCE, drain_started=100.0)
        e = explain_service(
            "ns",
            "web",
            WEB,
            (Endpoint("n1"),),
            {"n1": cordoned},
            [PEER],
            POOLS,
            {"n1": st},
            [],
            {},
            now,
        )
        r = row(e, "n1")
        assert (r.announces, r.check or None, r.announcer) == (reason is None, reason, AGREES)
        if reason is None:  # draining: its routes still go out, with GRACEFUL_SHUTDOWN
            assert "withdrawn at 1970-01-01T00:02:10Z" in r.graceful_shutdown
            assert GRACEFUL_SHUTDOWN in r.routes["tor"]["198.51.100.1/32"].communities
            shown = render(explain_data(e), explain_tables(e), "table")
            assert "graceful-shutdown" in shown and "community [65535:0]" in shown
    assert "--drain-seconds of GRACEFUL_SHUTDOWN have passed" in r.evidence


NOW = 1_800_000_000.0


def test_a_node_whose_heartbeat_expired_announces_nothing_whatever_its_status_says() -> None:
    """Its BGPSessionStatus still says "session up": it is what a SIGKILLed announcer left."""
    beats = {"n1": Heartbeat("n1", NOW - 47, 40), "n2": Heartbeat("n2", NOW - 3, 40)}
    e = run({"n1": status("n1"), "n2": status("n2")}, heartbeats=beats, now=NOW)
    dead = row(e, "n1")
    assert (dead.announces, dead.check, dead.announcer) == (
        False,
        ANNOUNCER_NOT_RUNNING,
        NOT_RUNNING,
    )
    assert dead.routes == {} and dead.heartbeat.age == 47
    assert e.problems == (
        "node n1: announcer not running: no heartbeat for 47 s (expected every 10 s)",
        "Service ns/web is announced by no node",
    )
    assert "updated 2026-11-30T09:30:00Z, is its last word" in dead.announcer_detail
    assert row(e, "n2").announcer == AGREES and row(e, "n2").heartbeat.alive
    shown = render(explain_data(e), explain_tables(e), "table")
    assert "announcer not running: no heartbeat for 47 s" in shown
    assert explain_data(e)["nodes"][0]["heartbeat"] == {"state": "stale", "age": 47.0}


def test_a_fresh_heartbeat_changes_nothing_and_a_missing_one_falls_back_to_the_status() -> None:
    statuses = {"n1": status("n1"), "n2": status("n2")}
    fresh = {"n1": Heartbeat("n1", NOW - 9.5, 40), "n2": Heartbeat("n2", NOW, 40)}
    for beats in (fresh, {}):
        e = run(statuses, heartbeats=beats, now=NOW)
        assert (row(e, "n1").announces, row(e, "n1").announcer) == (True, AGREES)
        assert e.problems == ()
    e = run({"n2": status("n2")}, heartbeats={"n2": fresh["n2"]}, now=NOW)
    assert (row(e, "n1").announces, row(e, "n1").announcer) == (True, NOT_RUNNING)


def test_a_heartbeat_from_the_future_is_a_problem_not_a_fresh_announcer() -> None:
    beats = {"n1": Heartbeat("n1", NOW + 600, 40)}
    e = run({"n1": status("n1"), "n2": status("n2")}, heartbeats=beats, now=NOW)
    assert row(e, "n1").announcer == CLOCK_SKEW
    assert e.problems[0].startswith("node n1: heartbeat renewed 600 s ahead of this clock")


def test_a_dead_announcer_on_a_node_that_would_not_announce_keeps_its_check() -> None:
    beats = {"n2": Heartbeat("n2", NOW - 100, 40)}
    e = run({"n1": status("n1"), "n2": status("n2")}, heartbeats=beats, now=NOW)
    r = row(e, "n2")
    assert (r.check, r.announcer) == (decide.NO_LOCAL_ENDPOINTS, NOT_RUNNING)
    assert e.problems == (
        "node n2: announcer not running: no heartbeat for 100 s (expected every 10 s)",
    )
