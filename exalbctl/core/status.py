"""``exalbctl status``: pools with their use, Services with IP and pool, sessions per node.

Built from the objects exalb's own processes write: VIPPool.status (the allocator's
counters and conditions), the Service's status and ``exalb.io/ip-allocated-from-pool``
annotation, the allocator's Warning Events on pending Services, and each announcer's
BGPSessionStatus and heartbeat Lease. Every ``problems`` entry is something an operator
must look at; the CLI exits non-zero when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allocator.core.service import POOL_ANNOTATION, claims
from exalb.heartbeat import Heartbeat, Liveness, liveness

from .heartbeat_view import session_report_problem

Obj = Mapping[str, Any]
FAMILIES = ("IPv4", "IPv6")
NO_EVENT = "no allocation Event yet (is exalb-allocator running?)"
ANNOUNCERS_NOTE = (
    "announcers do not report which Services they announce (BGPSessionStatus carries "
    "per-node counts only); sessions per node are shown instead"
)


@dataclass(frozen=True)
class FamilyUse:
    family: str
    capacity: int
    assigned: int
    available: int


@dataclass(frozen=True)
class PoolRow:
    name: str
    addresses: tuple[str, ...]
    ready: str  # True | False | Unknown (no status yet)
    reason: str
    message: str
    use: tuple[FamilyUse, ...]  # families with a capacity


@dataclass(frozen=True)
class ServiceRow:
    namespace: str
    name: str
    ips: tuple[str, ...]
    pool: str
    reason: str  # why it is pending; "" once it has an IP


@dataclass(frozen=True)
class PeerSession:
    node: str
    peer: str
    address: str
    state: str
    since: str
    prefixes: int
    last_error: str


@dataclass(frozen=True)
class NodeRow:
    node: str
    sessions: int
    sessions_up: int
    services_announced: int
    updated: str
    peers: tuple[PeerSession, ...]
    heartbeat: Liveness


@dataclass(frozen=True)
class StatusReport:
    pools: tuple[PoolRow, ...]
    services: tuple[ServiceRow, ...]
    nodes: tuple[NodeRow, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    now: datetime

    @property
    def pending(self) -> tuple[ServiceRow, ...]:
        return tuple(s for s in self.services if not s.ips)


# --- building --------------------------------------------------------------------------
def build_status(
    pools: Iterable[Obj],
    services: Iterable[Obj],
    events: Iterable[Obj],
    sessions: Iterable[Obj],
    heartbeats: Mapping[str, Heartbeat],
    now: datetime,
    lb_class: str | None = None,
) -> StatusReport:
    pool_rows = tuple(sorted((pool_row(p) for p in pools), key=lambda r: r.name))
    ours = [s for s in services if is_ours(s, lb_class)]
    reasons = pending_reasons(events)
    svc_rows = tuple(
        sorted((service_row(s, reasons) for s in ours), key=lambda r: (r.namespace, r.name))
    )
    node_rows = tuple(
        sorted((node_row(s, heartbeats, now) for s in sessions), key=lambda r: r.node)
    )
    problems = (
        *(p for raw in _sorted_by_name(pools) for p in pool_problems(raw)),
        *(f"Service {s.namespace}/{s.name} is pending: {s.reason}" for s in svc_rows if not s.ips),
        *filter(None, (session_report_problem(n.node, n.heartbeat) for n in node_rows)),
        *(p for n in node_rows for p in session_problems(n)),
    )
    return StatusReport(pool_rows, svc_rows, node_rows, tuple(problems), (ANNOUNCERS_NOTE,), now)


def _sorted_by_name(objs: Iterable[Obj]) -> list[Obj]:
    return sorted(objs, key=lambda o: str((o.get("metadata") or {}).get("name", "")))


def is_ours(svc: Obj, lb_class: str | None) -> bool:
    """The allocator's own rule (allocator.core.service.claims)."""
    spec = svc.get("spec") or {}
    return claims(spec.get("type"), spec.get("loadBalancerClass"), lb_class)


def pool_row(pool: Obj) -> PoolRow:
    md, spec, status = _parts(pool)
    ready = _condition(status, "Ready")
    use = tuple(
        FamilyUse(
            f,
            int(status.get(f"capacity{f}") or 0),
            int(status.get(f"assigned{f}") or 0),
            int(status.get(f"available{f}") or 0),
        )
        for f in FAMILIES
        if status.get(f"capacity{f}")
    )
    return PoolRow(
        name=str(md.get("name", "")),
        addresses=tuple(str(a) for a in spec.get("addresses") or ()),
        ready=str(ready.get("status", "Unknown")),
        reason=str(ready.get("reason", "")),
        message=str(ready.get("message", "")),
        use=use,
    )


def pool_problems(pool: Obj) -> list[str]:
    md, _, status = _parts(pool)
    name = md.get("name", "")
    generation = int(md.get("generation") or 0)
    if not status or int(status.get("observedGeneration") or 0) < generation:
        return [
            f"pool {name}: the allocator has not reported on generation {generation} yet "
            "(is exalb-allocator running?)"
        ]
    row = pool_row(pool)
    if row.ready != "True":
        return [f"pool {name} is not ready ({row.reason}): {row.message}"]
    return [
        f"pool {name} is exhausted: {u.assigned}/{u.capacity} {u.family} addresses assigned"
        for u in row.use
        if u.available == 0
    ]


def service_row(svc: Obj, reasons: Mapping[tuple[str, str, str], str]) -> ServiceRow:
    md, _, status = _parts(svc)
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    ips = tuple(str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, Mapping))
    ns, name = str(md.get("namespace", "")), str(md.get("name", ""))
    reason = "" if ips else reasons.get((ns, name, str(md.get("uid", ""))), NO_EVENT)
    ann = md.get("annotations") or {}
    return ServiceRow(ns, name, ips, str(ann.get(POOL_ANNOTATION, "")), reason)


def pending_reasons(events: Iterable[Obj]) -> dict[tuple[str, str, str], str]:
    """Per (namespace, name, uid): the latest AllocationFailed message, else the latest Warning.

    Keyed by uid too, so the Events of a deleted Service never explain its namesake.
    """
    best: dict[tuple[str, str, str], tuple[bool, str, str]] = {}
    for ev in events:
        obj = ev.get("involvedObject") or {}
        if obj.get("kind") != "Service" or ev.get("type") != "Warning":
            continue
        key = (str(obj.get("namespace", "")), str(obj.get("name", "")), str(obj.get("uid", "")))
        rank = (ev.get("reason") == "AllocationFailed", _event_time(ev))
        text = f"{ev.get('reason', '')}: {ev.get('message', '')}"
        if key not in best or rank > best[key][:2]:
            best[key] = (*rank, text)
    return {k: v[2] for k, v in best.items()}


def _event_time(ev: Obj) -> str:
    """RFC 3339 strings in UTC compare in time order."""
    md = ev.get("metadata") or {}
    return str(
        ev.get("lastTimestamp")
        or ev.get("eventTime")
        or ev.get("firstTimestamp")
        or md.get("creationTimestamp")
        or ""
    )


def node_row(obj: Obj, heartbeats: Mapping[str, Heartbeat], now: datetime) -> NodeRow:
    md, _, status = _parts(obj)
    node = str(status.get("node") or md.get("name", ""))
    peers = tuple(
        PeerSession(
            node=node,
            peer=str(p.get("name", "")),
            address=str(p.get("address", "")),
            state=str(p.get("state", "unknown")),
            since=str(p.get("since", "")),
            prefixes=int(p.get("prefixes") or 0),
            last_error=str(p.get("lastError", "")),
        )
        for p in status.get("peers") or ()
    )
    return NodeRow(
        node=node,
        sessions=int(status.get("sessions") or len(peers)),
        sessions_up=int(status.get("sessionsUp") or 0),
        services_announced=int(status.get("servicesAnnounced") or 0),
        updated=str(status.get("updated", "")),
        peers=peers,
        heartbeat=liveness(heartbeats.get(node), now.timestamp()),
    )


def session_problems(node: NodeRow) -> list[str]:
    out = []
    for p in node.peers:
        if p.state != "up":
            error = f": {p.last_error}" if p.last_error else ""
            out.append(
                f"node {node.node}: session to peer {p.peer} ({p.address}) is {p.state} "
                f"since {p.since or 'unknown'}{error}"
            )
    return out


def _parts(obj: Obj) -> tuple[Obj, Obj, Obj]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


def _condition(status: Obj, type_: str) -> Obj:
    for c in status.get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == type_:
            return c
    return {}
