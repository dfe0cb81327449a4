"""How ``exalbctl explain`` shows its report: the ``-o json|yaml`` shape and the tables."""

from __future__ import annotations

from typing import Any

from announcer.core.diff import attributes
from announcer.core.model import Attrs
from exalbctl.output import Table

from .explain import Explanation, NodeExplanation
from .heartbeat_view import heartbeat_cell, heartbeat_data


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
                "heartbeat": heartbeat_data(n.heartbeat),
                "routes": [
                    {"peer": peer, "prefix": prefix, **attrs_data(attrs)}
                    for peer, routes in n.routes.items()
                    for prefix, attrs in routes.items()
                ],
                "degraded": n.degraded,
                "gracefulShutdown": n.graceful_shutdown,
            }
            for n in r.nodes
        ],
        "problems": list(r.problems),
    }


def attrs_data(a: Attrs) -> dict[str, Any]:
    """One route's path attributes; null or empty where the route carries none."""
    bandwidth = a.link_bandwidth
    return {
        "nextHop": a.next_hop,
        "communities": list(a.communities),
        "largeCommunities": list(a.large_communities),
        "localPref": a.local_pref,
        "med": a.med,
        "asPath": list(a.as_path),
        "linkBandwidth": (
            None if bandwidth is None else {"asn": bandwidth[0], "bytesPerSecond": bandwidth[1]}
        ),
    }


def _route_state(n: NodeExplanation) -> str:
    marks = [("degraded", n.degraded), ("graceful-shutdown", n.graceful_shutdown)]
    return ",".join(name for name, why in marks if why)


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
                    "; ".join(e for e in (n.evidence, n.degraded, n.graceful_shutdown) if e),
                )
                for n in r.nodes
            ),
            empty="no nodes",
        ),
        Table(
            "Routes (as ExaBGP is told to send them)",
            ("NODE", "PEER", "PREFIX", "STATE", "ATTRIBUTES"),
            tuple(
                (n.node, peer, prefix, _route_state(n), attributes(attrs))
                for n in r.nodes
                for peer, routes in n.routes.items()
                for prefix, attrs in routes.items()
            ),
            empty="no routes",
        ),
        Table(
            "Announcers",
            ("NODE", "ANNOUNCER", "HEARTBEAT", "DETAIL"),
            tuple(
                (n.node, n.announcer, heartbeat_cell(n.heartbeat), n.announcer_detail)
                for n in r.nodes
            ),
            empty="no nodes",
        ),
        Table("Problems", ("PROBLEM",), tuple((p,) for p in r.problems)),
    ]
