"""exalbctl.core.status: objects as the allocator and announcers write them -> rows and problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exalb.heartbeat import Heartbeat
from exalbctl.core.status import NO_EVENT, build_status, pending_reasons
from exalbctl.core.status_view import age, status_data, status_tables
from exalbctl.output import render

NOW = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]


def vippool(
    name: str,
    v4: tuple[int, int] | None = (4, 1),
    generation: int = 1,
    ready: tuple[str, str, str] = ("True", "Ready", ""),
    **status: Any,
) -> Obj:
    st: Obj = {"observedGeneration": generation, **status}
    if v4:
        st.update(capacityIPv4=v4[0], assignedIPv4=v4[1], availableIPv4=v4[0] - v4[1])
    st["conditions"] = [
        {"type": "Ready", "status": ready[0], "reason": ready[1], "message": ready[2]}
    ]
    return {
        "metadata": {"name": name, "generation": generation},
        "spec": {"addresses": ["198.51.100.0/30"]},
        "status": st,
    }


def service(
    name: str,
    ips: tuple[str, ...] = (),
    pool: str = "",
    ns: str = "shop",
    uid: str = "",
    **spec: Any,
) -> Obj:
    ann = {"exalb.io/ip-allocated-from-pool": pool} if pool else {}
    return {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": uid or f"uid-{name}",
            "annotations": ann,
        },
        "spec": {"type": "LoadBalancer", **spec},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def event(
    name: str, reason: str, message: str, at: str, type_: str = "Warning", uid: str = ""
) -> Obj:
    return {
        "involvedObject": {
            "kind": "Service",
            "namespace": "shop",
            "name": name,
            "uid": uid or f"uid-{name}",
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "lastTimestamp": at,
    }


def sessions(node: str, *peers: tuple[str, str, str]) -> Obj:
    return {
        "metadata": {"name": node},
        "status": {
            "node": node,
            "sessions": len(peers),
            "sessionsUp": sum(1 for p in peers if p[1] == "up"),
            "servicesAnnounced": 2,
            "updated": "2026-11-30T05:59:00Z",
            "peers": [
                {
                    "name": n,
                    "address": "192.0.2.1",
                    "state": s,
                    "since": "2026-11-30T05:50:00Z",
                    "lastError": e,
                    "prefixes": 2 if s == "up" else 0,
                    "updatesSent": 2,
                    "exabgpRestarts": 0,
                }
                for n, s, e in peers
            ],
        },
    }


# (name, pools, services, events, sessions, expected problems (substrings, in order))
CASES: list[tuple[str, list[Obj], list[Obj], list[Obj], list[Obj], list[str]]] = [
    (
        "all well",
        [vippool("main")],
        [service("web", ("198.51.100.0",), "main")],
        [],
        [sessions("n1", ("tor", "up", ""))],
        [],
    ),
    ("nothing at all", [], [], [], [], []),
    (
        "pool exhausted",
        [vippool("main", v4=(4, 4))],
        [],
        [],
        [],
        ["pool main is exhausted: 4/4 IPv4"],
    ),
    (
        "pool overlapping",
        [vippool("new", ready=("False", "Overlapping", "overlaps pool old"))],
        [],
        [],
        [],
        ["pool new is not ready (Overlapping): overlaps pool old"],
    ),
    (
        "pool never reported",
        [{"metadata": {"name": "p", "generation": 1}, "spec": {}}],
        [],
        [],
        [],
        ["pool p: the allocator has not reported on generation 1"],
    ),
    (
        "pool edited, not yet seen",
        [vippool("p", generation=2) | {"metadata": {"name": "p", "generation": 3}}],
        [],
        [],
        [],
        ["pool p: the allocator has not reported on generation 3"],
    ),
    (
        "pending with AllocationFailed",
        [vippool("main")],
        [service("web")],
        [
            event(
                "web",
                "AllocationFailed",
                "no available IPs in pool(s) main",
                "2026-11-30T05:00:00Z",
            )
        ],
        [],
        ["Service shop/web is pending: AllocationFailed: no available IPs in pool(s) main"],
    ),
    (
        "pending, no Event",
        [],
        [service("web")],
        [],
        [],
        [f"Service shop/web is pending: {NO_EVENT}"],
    ),
    (
        "another class is not ours",
        [],
        [service("web", loadBalancerClass="other.io/lb")],
        [],
        [],
        [],
    ),
    ("not a LoadBalancer", [], [service("web") | {"spec": {"type": "ClusterIP"}}], [], [], []),
    (
        "session down",
        [],
        [],
        [],
        [sessions("n1", ("tor-a", "up", ""), ("tor-b", "down", "Connection refused"))],
        [
            "node n1: session to peer tor-b (192.0.2.1) is down since 2026-11-30T05:50:00Z: "
            "Connection refused"
        ],
    ),
]


@pytest.mark.parametrize(
    ("pools", "services", "events", "nodes", "problems"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_problems(
    pools: list[Obj], services: list[Obj], events: list[Obj], nodes: list[Obj], problems: list[str]
) -> None:
    r = build_status(pools, services, events, nodes, {}, NOW)
    assert len(r.problems) == len(problems), r.problems
    for got, want in zip(r.problems, problems, strict=True):
        assert want in got


def test_rows_and_data() -> None:
    r = build_status(
        [vippool("main", v4=(4, 1), capacityIPv6=256, assignedIPv6=0, availableIPv6=256)],
        [service("web", ("198.51.100.0", "2001:db8::1"), "main"), service("api")],
        [event("api", "AllocationFailed", "pool 'gold' does not exist", "2026-11-30T05:00:00Z")],
        [sessions("n1", ("tor", "up", ""))],
        {"n1": Heartbeat("n1", NOW.timestamp() - 2, 40)},
        NOW,
    )
    data = status_data(r)
    assert data["pools"] == [
        {
            "name": "main",
            "addresses": ["198.51.100.0/30"],
            "ready": "True",
            "reason": "Ready",
            "message": "",
            "use": {
                "IPv4": {"capacity": 4, "assigned": 1, "available": 3},
                "IPv6": {"capacity": 256, "assigned": 0, "available": 256},
            },
        }
    ]
    assert data["services"] == [
        {"namespace": "shop", "name": "web", "ips": ["198.51.100.0", "2001:db8::1"], "pool": "main"}
    ]
    assert data["pending"] == [
        {
            "namespace": "shop",
            "name": "api",
            "reason": "AllocationFailed: pool 'gold' does not exist",
        }
    ]
    assert data["nodes"][0]["sessionsUp"] == 1
    assert data["nodes"][0]["peers"][0] == {
        "name": "tor",
        "address": "192.0.2.1",
        "state": "up",
        "since": "2026-11-30T05:50:00Z",
        "prefixes": 2,
        "lastError": "",
    }
    text = render(data, status_tables(r), "table")
    assert "main  True   1/4       0/256     198.51.100.0/30" in text
    assert "shop/web  198.51.100.0,2001:db8::1  main" in text
    assert "n1    2s         tor   192.0.2.1  up     10m0s" in text
    assert data["nodes"][0]["heartbeat"] == {"state": "alive", "age": 2.0}
    assert "Pending:\nSERVICE   REASON\nshop/api  AllocationFailed: pool 'gold'" in text
    assert "Problems:\nPROBLEM\nService shop/api is pending: AllocationFailed" in text


EVENT_CASES: list[tuple[str, list[Obj], str | None]] = [
    (
        "latest AllocationFailed wins",
        [
            event("w", "AllocationFailed", "old", "2026-11-30T01:00:00Z"),
            event("w", "AllocationFailed", "new", "2026-11-30T02:00:00Z"),
        ],
        "AllocationFailed: new",
    ),
    (
        "AllocationFailed beats a later Warning",
        [
            event("w", "AllocationFailed", "why", "2026-11-30T01:00:00Z"),
            event("w", "InvalidAnnotation", "later", "2026-11-30T02:00:00Z"),
        ],
        "AllocationFailed: why",
    ),
    (
        "any Warning when no AllocationFailed",
        [event("w", "PoolNotReady", "pool p invalid", "2026-11-30T01:00:00Z")],
        "PoolNotReady: pool p invalid",
    ),
    (
        "Normal events explain nothing",
        [event("w", "IPAllocated", "Assigned", "2026-11-30T01:00:00Z", type_="Normal")],
        None,
    ),
    (
        "an earlier Service of the same name",
        [event("w", "AllocationFailed", "old one", "2026-11-30T01:00:00Z", uid="old")],
        None,
    ),
]


@pytest.mark.parametrize(
    ("events", "reason"), [c[1:] for c in EVENT_CASES], ids=[c[0] for c in EVENT_CASES]
)
def test_pending_reason(events: list[Obj], reason: str | None) -> None:
    assert pending_reasons(events).get(("shop", "w", "uid-w")) == reason


@pytest.mark.parametrize(
    ("ts", "shown"),
    [
        ("2026-11-30T06:00:00Z", "0s"),
        ("2026-11-30T05:59:30Z", "30s"),
        ("2026-11-30T05:50:00Z", "10m0s"),
        ("2026-11-30T03:30:00Z", "2h30m"),
        ("2026-11-28T05:00:00Z", "2d1h"),
        ("", ""),
        ("garbage", ""),
    ],
)
def test_age(ts: str, shown: str) -> None:
    assert age(ts, NOW) == shown


def test_no_sessions_says_why() -> None:
    text = render({}, status_tables(build_status([], [], [], [], {}, NOW)), "table")
    assert "Sessions: no BGPSessionStatus reported" in text
    assert "Problems: none" in text


def test_an_expired_heartbeat_is_a_problem_even_with_every_session_up() -> None:
    dead = {"n1": Heartbeat("n1", NOW.timestamp() - 120, 40)}
    r = build_status([], [], [], [sessions("n1", ("tor", "up", ""))], dead, NOW)
    assert r.problems == (
        "node n1: announcer not running: no heartbeat for 120 s (expected every 10 s); "
        "its sessions below are its last report",
    )
    assert "n1    120s (stale)  tor" in render({}, status_tables(r), "table")
