"""How ``exalbctl explain`` shows its report: the ``-o json|yaml`` shape and the tables."""

from __future__ import annotations

from typing import Any

from exalbctl.output import Table

from .explain import Explanation


def explain_data(r: Explanation) -> dict[str, Any]:
    """The ``-o json|yaml`` shape: stable keys, camelCase like the API objects."""
    return {
        "service": {
            "namespace": r.namespace,
            "name": r.name,
            "ips": list(r.ips),
            "pool": r.pool,
            "externalTrafficPolicy": r.traffic_policy,
        },
        "nodes": [
            {
                "node": n.node,
                "announces": n.announces,
                "check": n.check,
                "evidence": n.evidence,
                "peers": list(n.peers),
                "announcer": n.announcer,
                "announcerDetail": n.announcer_detail,
            }
            for n in r.nodes
        ],
        "problems": list(r.problems),
    }


def explain_tables(r: Explanation) -> list[Table]:
    service = f"{r.namespace}/{r.name}"
    summary = f"{','.join(r.ips) or 'no IP'} from pool {r.pool or '-'}, {r.traffic_policy or '-'}"
    return [
        Table(
            f"Service {service} ({summary})",
            ("NODE", "ANNOUNCES", "CHECK", "PEERS", "ANNOUNCER", "EVIDENCE"),
            tuple(
                (
                    n.node,
                    "yes" if n.announces else "no",
                    n.check,
                    ",".join(n.peers),
                    n.announcer,
                    n.evidence,
                )
                for n in r.nodes
            ),
            empty="no nodes",
        ),
        Table(
            "Announcers",
            ("NODE", "ANNOUNCER", "DETAIL"),
            tuple((n.node, n.announcer, n.announcer_detail) for n in r.nodes),
            empty="no nodes",
        ),
        Table("Problems", ("PROBLEM",), tuple((p,) for p in r.problems)),
    ]
