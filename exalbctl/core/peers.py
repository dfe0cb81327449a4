"""``exalbctl peers``: every BGP session, per node and BGPPeer, with the router's side of it.

Built from what exalb's processes write: each announcer's BGPSessionStatus (state and
since when, prefixes, the negotiated hold time and capabilities, the last NOTIFICATION
each way with its RFC 8203 text) and the allocator's ``BGPPeer.status`` (how many
selected nodes have the session established), and each announcer's heartbeat Lease. A
session not established, a peer a node cannot use, a peer established on fewer nodes than
it selects, or a node whose announcer's heartbeat expired (its sessions are then its last
report, not the present) is a problem: the CLI exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exalb.heartbeat import Heartbeat, Liveness, liveness
from exalb.sessionstatus import notification_summary

from .heartbeat_view import session_report_problem

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Session:
    node: str
    peer: str
    address: str
    state: str
    since: str
    seconds: int | None  # how long the state has held; None when unknown
    prefixes: int
    hold_time: int | None
    capabilities: tuple[str, ...]
    end_of_rib_sent: str  # RFC 3339, "" until this session's End-of-RIB went out
    end_of_rib_received: str  # the router's, "" until it came
    last_error: str
    ended_by: str
    received: Obj | None  # the router's last NOTIFICATION, as the status carries it
    sent: Obj | None

    @property
    def up(self) -> bool:
        return self.state == "up"


@dataclass(frozen=True)
class PeerSummary:
    name: str
    address: str
    established: str  # "2/3", or "" before the allocator has written it
    nodes_established: int | None
    nodes_selected: int | None
    message: str  # the Established condition's message


@dataclass(frozen=True)
class Unusable:
    node: str
    peer: str
    reason: str


@dataclass(frozen=True)
class PeersReport:
    peers: tuple[PeerSummary, ...]
    sessions: tuple[Session, ...]
    unusable: tuple[Unusable, ...]
    problems: tuple[str, ...]
    now: datetime
    heartbeats: Mapping[str, Liveness]  # node -> its announcer's, for nodes with a status


def build_peers(
    bgppeers: Iterable[Obj],
    session_statuses: Iterable[Obj],
    heartbeats: Mapping[str, Heartbeat],
    now: datetime,
) -> PeersReport:
    peers = tuple(sorted((peer_summary(p) for p in bgppeers), key=lambda p: p.name))
    sessions: list[Session] = []
    unusable: list[Unusable] = []
    lives: dict[str, Liveness] = {}
    for obj in session_statuses:
        status = obj.get("status") or {}
        node = str(status.get("node") or (obj.get("metadata") or {}).get("name", ""))
        lives[node] = liveness(heartbeats.get(node), now.timestamp())
        sessions += [session(node, p, now) for p in status.get("peers") or ()]
        unusable += [
            Unusable(node, str(u.get("name", "")), str(u.get("reason", "")))
            for u in status.get("unusablePeers") or ()
        ]
    sessions.sort(key=lambda s: (s.node, s.peer))
    unusable.sort(key=lambda u: (u.node, u.peer))
    problems = (
        *filter(None, (session_report_problem(n, life) for n, life in sorted(lives.items()))),
        *(session_problem(s) for s in sessions if not s.up),
        *(f"node {u.node} cannot use peer {u.peer}: {u.reason}" for u in unusable),
        *(
            f"peer {p.name} is established on {p.established} selected nodes"
            for p in peers
            if p.nodes_selected and (p.nodes_established or 0) < p.nodes_selected
        ),
    )
    return PeersReport(peers, tuple(sessions), tuple(unusable), problems, now, lives)


def peer_summary(obj: Obj) -> PeerSummary:
    md, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    conditions = [c for c in status.get("conditions") or () if isinstance(c, Mapping)]
    established: Obj = next((c for c in conditions if c.get("type") == "Established"), {})
    return PeerSummary(
        name=str(md.get("name", "")),
        address=str(spec.get("peerAddress", "")),
        established=str(status.get("established", "")),
        nodes_established=_int_or_none(status.get("nodesEstablished")),
        nodes_selected=_int_or_none(status.get("nodesSelected")),
        message=str(established.get("message", "")),
    )


def session(node: str, entry: Obj, now: datetime) -> Session:
    since = str(entry.get("since", ""))
    return Session(
        node=node,
        peer=str(entry.get("name", "")),
        address=str(entry.get("address", "")),
        state=str(entry.get("state", "unknown")),
        since=since,
        seconds=seconds_since(since, now),
        prefixes=int(entry.get("prefixes") or 0),
        hold_time=_int_or_none(entry.get("holdTime")),
        capabilities=tuple(str(c) for c in entry.get("capabilities") or ()),
        end_of_rib_sent=str(entry.get("endOfRibSent", "")),
        end_of_rib_received=str(entry.get("endOfRibReceived", "")),
        last_error=str(entry.get("lastError", "")),
        ended_by=str(entry.get("endedBy", "")),
        received=entry.get("lastNotificationReceived"),
        sent=entry.get("lastNotificationSent"),
    )


def session_problem(s: Session) -> str:
    text = f"node {s.node}: session to peer {s.peer} ({s.address}) is {s.state}"
    text += f" since {s.since or 'unknown'}"
    if s.ended_by == "received":
        return f"{text}: the router sent {notification_summary(s.received)}"
    if s.ended_by == "sent":
        return f"{text}: this node sent {notification_summary(s.sent)}"
    return f"{text}: {s.last_error}" if s.last_error else text


def seconds_since(timestamp: str, now: datetime) -> int | None:
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(int((now - then).total_seconds()), 0)


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))
