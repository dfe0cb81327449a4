"""How ``exalbctl peers`` shows its report: the ``-o json|yaml`` shape and the tables."""

from __future__ import annotations

from typing import Any

from exalb.sessionstatus import notification_summary
from exalbctl.output import Table

from .heartbeat_view import heartbeat_cell, heartbeat_data
from .peers import PeersReport, Session
from .status_view import age


def peers_data(r: PeersReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape: stable keys, camelCase like the API objects."""
    return {
        "peers": [
            {
                "name": p.name,
                "address": p.address,
                "established": p.established,
                "nodesEstablished": p.nodes_established,
                "nodesSelected": p.nodes_selected,
                "message": p.message,
            }
            for p in r.peers
        ],
        "sessions": [_session_data(s) for s in r.sessions],
        "heartbeats": {node: heartbeat_data(life) for node, life in r.heartbeats.items()},
        "unusable": [{"node": u.node, "peer": u.peer, "reason": u.reason} for u in r.unusable],
        "problems": list(r.problems),
    }


def _session_data(s: Session) -> dict[str, Any]:
    return {
        "node": s.node,
        "peer": s.peer,
        "address": s.address,
        "state": s.state,
        "since": s.since,
        "seconds": s.seconds,
        "prefixes": s.prefixes,
        "holdTime": s.hold_time,
        "capabilities": list(s.capabilities),
        "endOfRibSent": s.end_of_rib_sent,
        "endOfRibReceived": s.end_of_rib_received,
        "lastError": s.last_error,
        "endedBy": s.ended_by,
        "lastNotificationReceived": dict(s.received) if s.received else None,
        "lastNotificationSent": dict(s.sent) if s.sent else None,
    }


def peers_tables(r: PeersReport) -> list[Table]:
    return [
        Table(
            "Peers",
            ("PEER", "ADDRESS", "ESTABLISHED"),
            tuple((p.name, p.address, p.established) for p in r.peers),
            empty="no BGPPeer",
        ),
        Table(
            "Sessions",
            (
                "NODE",
                "HEARTBEAT",
                "PEER",
                "STATE",
                "FOR",
                "PREFIXES",
                "HOLD",
                "CAPABILITIES",
                "END-OF-RIB OUT/IN",
                "LAST RECEIVED",
                "LAST SENT",
            ),
            tuple(
                (
                    s.node,
                    heartbeat_cell(r.heartbeats[s.node]),
                    s.peer,
                    s.state,
                    age(s.since, r.now),
                    str(s.prefixes),
                    "" if s.hold_time is None else f"{s.hold_time}s",
                    ",".join(s.capabilities),
                    f"{_yes(s.end_of_rib_sent)}/{_yes(s.end_of_rib_received)}" if s.up else "",
                    notification_summary(s.received),
                    notification_summary(s.sent),
                )
                for s in r.sessions
            ),
            empty="no BGPSessionStatus reported (no announcer running, or --status-interval 0)",
        ),
        Table(
            "Unusable",
            ("NODE", "PEER", "REASON"),
            tuple((u.node, u.peer, u.reason) for u in r.unusable),
        ),
        Table("Problems", ("PROBLEM",), tuple((p,) for p in r.problems)),
    ]


def _yes(at: str) -> str:
    return "yes" if at else "no"
