"""How ``exalbctl status`` shows its report: the ``-o json|yaml`` shape and the tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exalbctl.output import Table

from .heartbeat_view import heartbeat_cell, heartbeat_data
from .status import PoolRow, StatusReport


def status_data(r: StatusReport) -> dict[str, Any]:
    """The ``-o json|yaml`` shape: stable keys, camelCase like the API objects."""
    return {
        "pools": [
            {
                "name": p.name,
                "addresses": list(p.addresses),
                "ready": p.ready,
                "reason": p.reason,
                "message": p.message,
                "use": {
                    u.family: {
                        "capacity": u.capacity,
                        "assigned": u.assigned,
                        "available": u.available,
                    }
                    for u in p.use
                },
            }
            for p in r.pools
        ],
        "services": [
            {"namespace": s.namespace, "name": s.name, "ips": list(s.ips), "pool": s.pool}
            for s in r.services
            if s.ips
        ],
        "pending": [
            {"namespace": s.namespace, "name": s.name, "reason": s.reason} for s in r.pending
        ],
        "nodes": [
            {
                "node": n.node,
                "sessions": n.sessions,
                "sessionsUp": n.sessions_up,
                "servicesAnnounced": n.services_announced,
                "updated": n.updated,
                "heartbeat": heartbeat_data(n.heartbeat),
                "peers": [
                    {
                        "name": p.peer,
                        "address": p.address,
                        "state": p.state,
                        "since": p.since,
                        "prefixes": p.prefixes,
                        "lastError": p.last_error,
                    }
                    for p in n.peers
                ],
            }
            for n in r.nodes
        ],
        "problems": list(r.problems),
        "notes": list(r.notes),
    }


def status_tables(r: StatusReport) -> list[Table]:
    return [
        Table(
            "Pools",
            ("NAME", "READY", "IPV4 USE", "IPV6 USE", "ADDRESSES"),
            tuple(
                (p.name, p.ready, _use(p, "IPv4"), _use(p, "IPv6"), ",".join(p.addresses))
                for p in r.pools
            ),
        ),
        Table(
            "Services",
            ("SERVICE", "IPS", "POOL"),
            tuple(
                (f"{s.namespace}/{s.name}", ",".join(s.ips), s.pool) for s in r.services if s.ips
            ),
        ),
        Table(
            "Pending",
            ("SERVICE", "REASON"),
            tuple((f"{s.namespace}/{s.name}", s.reason) for s in r.pending),
        ),
        Table(
            "Sessions",
            ("NODE", "HEARTBEAT", "PEER", "ADDRESS", "STATE", "FOR", "PREFIXES", "LAST ERROR"),
            tuple(
                (
                    p.node,
                    heartbeat_cell(n.heartbeat),
                    p.peer,
                    p.address,
                    p.state,
                    age(p.since, r.now),
                    str(p.prefixes),
                    p.last_error,
                )
                for n in r.nodes
                for p in n.peers
            ),
            empty="no BGPSessionStatus reported (no announcer running, or --status-interval 0)",
        ),
        Table("Problems", ("PROBLEM",), tuple((p,) for p in r.problems)),
        Table("Notes", ("NOTE",), tuple((n,) for n in r.notes)),
    ]


def _use(p: PoolRow, family: str) -> str:
    for u in p.use:
        if u.family == family:
            return f"{u.assigned}/{u.capacity}"
    return ""


def age(timestamp: str, now: datetime) -> str:
    """``2026-11-30T06:00:00Z`` -> ``3m12s``, as kubectl shows ages; "" when unknown."""
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(int((now - then).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
