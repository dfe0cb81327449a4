"""exalbctl.core.peers: BGPPeers and BGPSessionStatuses as exalb writes them -> rows, problems."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml

from exalb.heartbeat import Heartbeat
from exalbctl.core.peers import build_peers
from exalbctl.core.peers_view import peers_data, peers_tables
from exalbctl.output import render

NOW = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]
SHUTDOWN = {
    "code": 6,
    "subcode": 2,
    "name": "Cease/Administrative Shutdown",
    "communication": "maintenance window 42",
    "at": "2026-11-30T05:59:00Z",
}


def bgppeer(name: str, established: str | None, message: str = "") -> Obj:
    status: Obj = {}
    if established is not None:
        up, selected = (int(n) for n in established.split("/"))
        status = {
            "established": established,
            "nodesEstablished": up,
            "nodesSelected": selected,
            "conditions": [{"type": "Established", "status": "False", "message": message}],
        }
    return {"metadata": {"name": name}, "spec": {"peerAddress": "192.0.2.1"}, "status": status}


def node_status(node: str, *peers: Obj, unusable: tuple[Obj, ...] = ()) -> Obj:
    return {
        "metadata": {"name": node},
        "status": {"node": node, "peers": list(peers), "unusablePeers": list(unusable)},
    }


UP: Obj = {
    "name": "tor",
    "address": "192.0.2.1",
    "state": "up",
    "since": "2026-11-30T03:00:00Z",
    "prefixes": 6,
    "holdTime": 9,
    "capabilities": ["ipv4 unicast", "asn4"],
    "endOfRibSent": "2026-11-30T03:00:01Z",
    "endOfRibReceived": "2026-11-30T03:00:02Z",
    "lastError": "",
}
DOWN: Obj = {
    "name": "tor",
    "address": "192.0.2.1",
    "state": "down",
    "since": "2026-11-30T05:59:00Z",
    "prefixes": 0,
    "lastError": "closing connection",
    "endedBy": "received",
    "lastNotificationReceived": SHUTDOWN,
}


def test_all_established_is_no_problem() -> None:
    beats = {"node-a": Heartbeat("node-a", NOW.timestamp() - 4, 40)}
    r = build_peers([bgppeer("tor", "1/1")], [node_status("node-a", UP)], beats, NOW)
    assert r.problems == ()
    (s,) = r.sessions
    assert (s.state, s.seconds, s.hold_time, s.prefixes) == ("up", 3 * 3600, 9, 6)
    table = render(peers_data(r), peers_tables(r), "table")
    assert (
        "node-a  4s         tor   up     3h0m  6         9s    ipv4 unicast,asn4  yes/yes" in table
    )
    data = peers_data(r)["sessions"][0]
    assert (data["endOfRibSent"], data["endOfRibReceived"]) == (
        UP["endOfRibSent"],
        UP["endOfRibReceived"],
    )


def test_a_router_shutdown_shows_the_routers_words_everywhere() -> None:
    r = build_peers(
        [bgppeer("tor", "1/2", "established on 1 of 2 selected nodes; node-b: ...")],
        [node_status("node-a", UP), node_status("node-b", DOWN)],
        {},
        NOW,
    )
    said = "Cease/Administrative Shutdown (6/2): 'maintenance window 42'"
    assert r.problems == (
        f"node node-b: session to peer tor (192.0.2.1) is down since 2026-11-30T05:59:00Z: "
        f"the router sent {said}",
        "peer tor is established on 1/2 selected nodes",
    )
    data = json.loads(render(peers_data(r), peers_tables(r), "json"))
    down = data["sessions"][1]
    assert (down["node"], down["state"], down["seconds"]) == ("node-b", "down", 60)
    assert down["lastNotificationReceived"]["communication"] == "maintenance window 42"
    assert down["holdTime"] is None and down["lastNotificationSent"] is None
    assert (down["endOfRibSent"], down["endOfRibReceived"]) == ("", "")
    assert data["peers"][0]["established"] == "1/2"
    assert yaml.safe_load(render(peers_data(r), peers_tables(r), "yaml")) == data
    assert said in render(peers_data(r), peers_tables(r), "table")


def test_unusable_peers_and_missing_reports_are_problems() -> None:
    why = "passwordSecret 'tor-md5' is missing"
    r = build_peers(
        [bgppeer("tor", "0/1"), bgppeer("new", None)],
        [node_status("node-a", unusable=({"name": "tor", "reason": why},))],
        {},
        NOW,
    )
    assert r.problems == (
        f"node node-a cannot use peer tor: {why}",
        "peer tor is established on 0/1 selected nodes",
    )
    assert [p.established for p in r.peers] == ["", "0/1"]  # "new": no status written yet
    table = render(peers_data(r), peers_tables(r), "table")
    assert "no BGPSessionStatus reported" in table


def test_a_session_never_up_says_exabgps_reason() -> None:
    never = {**DOWN, "endedBy": None, "lastNotificationReceived": None}
    never["lastError"] = "connection to 192.0.2.1 failed: timed out"
    r = build_peers([], [node_status("node-a", never)], {}, NOW)
    assert r.problems[0].endswith(": connection to 192.0.2.1 failed: timed out")


def test_an_expired_heartbeat_makes_the_last_report_a_problem() -> None:
    """A SIGKILLed announcer's status still says "up": its heartbeat says it is gone."""
    beats = {"node-a": Heartbeat("node-a", NOW.timestamp() - 47, 40)}
    r = build_peers([bgppeer("tor", "1/1")], [node_status("node-a", UP)], beats, NOW)
    assert r.problems == (
        "node node-a: announcer not running: no heartbeat for 47 s (expected every 10 s); "
        "its sessions below are its last report",
    )
    assert "node-a  47s (stale)  tor" in render(peers_data(r), peers_tables(r), "table")
    assert peers_data(r)["heartbeats"] == {"node-a": {"state": "stale", "age": 47.0}}
