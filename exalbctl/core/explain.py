"""``exalbctl explain``: per node, whether it announces a Service, and if not, why.

The decision is the announcer's own (``announcer.core.explain`` runs
``decide.decide_service``), made with each node's own flags as its announcer reports
them. Past the decision come the checks only the node knows: BFD holding a peer down,
the BGP session's state. Last, what the node's announcer says is compared with what the
code decides: a node whose announcer reports other conclusions about its node or peers,
or whose last Announced/Withdrawn Event says otherwise, has a stale announcer; a node
that the code says announces but that has no BGPSessionStatus has none running. Before
all that, the node's heartbeat Lease (``exalb.heartbeat``): one not renewed for its
duration means no announcer runs there, whatever its last BGPSessionStatus says; the
node announces nothing (``ANNOUNCER_NOT_RUNNING``). A node without a heartbeat Lease
(an announcer older than heartbeats) is judged by its status alone.

The path attributes shown are the decision's too (``Verdict.routes``), with the node's
own --node-large-community and drain flags: what the router receives from the node,
degraded or carrying GRACEFUL_SHUTDOWN. A link bandwidth the announcer holds back for
--weight-hold shows as the decision wants it, not as last sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from announcer.core.datapath import DATA_PATH_UNCHECKED
from announcer.core.explain import Verdict, explain
from announcer.core.model import Attrs, Endpoint, Node, Options
from announcer.core.pools import PoolSpace
from announcer.core.report import DecisionReport, report_from
from announcer.core.transitions import ANNOUNCED, WITHDRAWN
from exalb.assignments import Assignment
from exalb.bgppeer import Peer
from exalb.heartbeat import ALIVE, CLOCK_SKEW, MISSING, Heartbeat, Liveness, liveness

Obj = Mapping[str, Any]
BFD_DOWN = "bfdDown"
SESSION_DOWN = "sessionDown"
ANNOUNCER_NOT_RUNNING = "announcerNotRunning"
NO_HEARTBEAT = Liveness(MISSING, None, "")
# How a node's announcer compares with the decision.
AGREES = "agrees"
STALE = "stale"
NOT_RUNNING = "notRunning"
NO_REPORT = "noReport"  # it reports sessions but not its decision (an older announcer)


@dataclass(frozen=True)
class NodeExplanation:
    node: str
    announces: bool
    check: str  # the first failing check ("" when every check passes)
    evidence: str
    announcer: str  # AGREES | STALE | NOT_RUNNING | NO_REPORT | CLOCK_SKEW
    announcer_detail: str
    # peer name -> prefix -> attributes, for the peers the routes leave this node for
    routes: Mapping[str, Mapping[str, Attrs]] = field(default_factory=dict)
    degraded: str = ""  # why the routes carry degraded attributes ("" when they do not)
    graceful_shutdown: str = ""  # why they carry GRACEFUL_SHUTDOWN ("" when they do not)
    heartbeat: Liveness = NO_HEARTBEAT

    @property
    def peers(self) -> tuple[str, ...]:
        """The peers the Service's routes are sent to from this node."""
        return tuple(self.routes)

    @property
    def disagrees(self) -> bool:
        return self.announcer in (STALE, NOT_RUNNING, CLOCK_SKEW)

    @property
    def problem(self) -> str:
        if self.heartbeat.state not in (ALIVE, MISSING):  # its message says it all
            return f"node {self.node}: {self.heartbeat.message}"
        return f"node {self.node}: its announcer is {self.announcer}: {self.announcer_detail}"


@dataclass(frozen=True)
class Explanation:
    namespace: str
    name: str
    ips: tuple[str, ...]
    pool: str
    traffic_policy: str
    nodes: tuple[NodeExplanation, ...]
    problems: tuple[str, ...]


def explain_service(
    namespace: str,
    name: str,
    assignment: Assignment | None,
    endpoints: Sequence[Endpoint],
    nodes: Mapping[str, Node],
    peers: Sequence[Peer],
    pools: Mapping[str, PoolSpace],
    statuses: Mapping[str, Obj],
    events: Iterable[Obj],
    heartbeats: Mapping[str, Heartbeat],
    now: float | None = None,
) -> Explanation:
    """``statuses``: node name -> its BGPSessionStatus ``status``; ``events``: the Service's;
    ``heartbeats``: node name -> what its heartbeat Lease says."""
    if assignment is None:
        problem = (
            f"no assignment published for {namespace}/{name}: the Service does not exist, "
            "is not a LoadBalancer of exalb's class, or is pending (see exalbctl status)"
        )
        return Explanation(namespace, name, (), "", "", (), (problem,))
    at = time.time() if now is None else now
    last_told = _last_events(events, assignment.uid)
    rows = tuple(
        explain_node(
            name_,
            nodes.get(name_),
            assignment,
            endpoints,
            peers,
            pools,
            statuses.get(name_),
            last_told.get(name_),
            liveness(heartbeats.get(name_), at),
            at,
        )
        for name_ in sorted(nodes.keys() | statuses.keys())
    )
    problems = [r.problem for r in rows if r.disagrees]
    if not any(r.announces for r in rows):
        problems.append(f"Service {namespace}/{name} is announced by no node")
    return Explanation(
        namespace,
        name,
        assignment.ips,
        assignment.pool,
        assignment.traffic_policy,
        rows,
        tuple(problems),
    )


def explain_node(
    name: str,
    node: Node | None,
    a: Assignment,
    endpoints: Sequence[Endpoint],
    peers: Sequence[Peer],
    pools: Mapping[str, PoolSpace],
    status: Obj | None,
    last_told: tuple[str, str] | None,
    heartbeat: Liveness,
    now: float,
) -> NodeExplanation:
    """One node; ``last_told`` is its latest (Event reason, time) on this Service."""
    report = report_from(name, (status or {}).get("decision"))
    opts = report.options if report else Options(node_name=name)
    node_peers = _as_node_sees(peers, status)
    drain_started = report.drain_started if report else None
    probes = report.checks.get(a.key) if report else None
    held = report.held.get(a.key) if report else None
    v = explain(node, node_peers, opts, now, pools, a, endpoints, drain_started, probes, held)
    if v.reason == DATA_PATH_UNCHECKED and report is not None and report.passing_omitted:
        note = f"; its report leaves out {report.passing_omitted} passing checks, maybe this one"
        v = replace(v, evidence=v.evidence + note)
    failing = _failing(report, status)
    announces, check, evidence = _past_the_decision(v, failing)
    announcer, detail = _compare(v, report, status)
    if announcer == AGREES and last_told is not None and report is not None:
        announcer, detail = _compare_told(v.announced, last_told, report)
    sent_to = {p: r for p, r in v.routes.items() if p not in failing}
    if heartbeat.state == CLOCK_SKEW:
        announcer, detail = CLOCK_SKEW, heartbeat.message
    elif heartbeat.state not in (ALIVE, MISSING):
        announcer, detail = NOT_RUNNING, _dead(heartbeat, status)
        if announces:
            announces, check, sent_to = False, ANNOUNCER_NOT_RUNNING, {}
            evidence = f"{heartbeat.message}; routers drop its routes when their hold time ends"
    return NodeExplanation(
        name,
        announces,
        check,
        evidence,
        announcer,
        detail,
        sent_to,
        v.degraded,
        v.graceful_shutdown,
        heartbeat,
    )


def _dead(heartbeat: Liveness, status: Obj | None) -> str:
    if status is None:
        return heartbeat.message
    updated = status.get("updated", "?")
    return f"{heartbeat.message}; its BGPSessionStatus, updated {updated}, is its last word"


def _as_node_sees(peers: Sequence[Peer], status: Obj | None) -> list[Peer]:
    """The peers with the problems this node's announcer reports (it alone reads Secrets)."""
    unusable = {
        str(u.get("name")): str(u.get("reason", ""))
        for u in (status or {}).get("unusablePeers") or ()
        if isinstance(u, Mapping)
    }
    return [
        replace(p, problem=unusable[p.name]) if p.problem is None and p.name in unusable else p
        for p in peers
    ]


def _sessions(status: Obj | None) -> dict[str, tuple[str, str]]:
    """Peer name -> (session state, last error), as the node reports them."""
    return {
        str(p.get("name")): (str(p.get("state", "unknown")), str(p.get("lastError") or ""))
        for p in (status or {}).get("peers") or ()
        if isinstance(p, Mapping)
    }


def _failing(report: DecisionReport | None, status: Obj | None) -> dict[str, tuple[str, str]]:
    """Peers whose routes do not leave the node: check and evidence, per peer name."""
    if status is None:
        return {}
    sessions = _sessions(status)
    out: dict[str, tuple[str, str]] = {}
    for peer in report.bfd_down if report else ():
        out[peer] = (BFD_DOWN, f"BFD with peer {peer} is down; its BGP session is held down")
    for peer, (state, error) in sessions.items():
        if state != "up" and peer not in out:
            why = f": {error}" if error else ""
            out[peer] = (SESSION_DOWN, f"the BGP session with peer {peer} is {state}{why}")
    return out


def _past_the_decision(v: Verdict, failing: Mapping[str, tuple[str, str]]) -> tuple[bool, str, str]:
    """Announced by the decision: are the routes sent? BFD and sessions, per peer."""
    if not v.announced:
        return False, v.reason or "", v.evidence
    blocked = [failing[p] for p in v.routes if p in failing]
    if len(blocked) == len(v.routes):
        return False, blocked[0][0], "; ".join(e for _, e in blocked)
    notes = [v.evidence] + [e for _, e in blocked]
    return True, v.reason or "", "; ".join(notes)


def _compare(v: Verdict, report: DecisionReport | None, status: Obj | None) -> tuple[str, str]:
    """The node's announcer against the code: its report on its node and peers."""
    if status is None:
        why = "no BGPSessionStatus for this node (no announcer runs there, or --status-interval 0)"
        return (NOT_RUNNING if v.announced else NO_REPORT), why
    if report is None:
        return NO_REPORT, "its BGPSessionStatus carries no decision report"
    if (report.node_reason or "") != (v.node_reason or ""):
        return STALE, (
            f"it reports the node as {report.node_reason or 'eligible'}; "
            f"the API's objects say {v.node_reason or 'eligible'}"
        )
    if tuple(report.peers) != v.node_peers:
        return STALE, (
            f"it runs sessions for peers {list(report.peers)}; "
            f"the API's objects select {list(v.node_peers)}"
        )
    return AGREES, f"reported at {status.get('updated', '?')}"


def _compare_told(
    announced: bool, last_told: tuple[str, str], report: DecisionReport
) -> tuple[str, str]:
    """Its last Announced/Withdrawn Event on the Service, if this process wrote it."""
    reason, at = last_told
    if at <= report.events_since:
        return AGREES, f"its Events on this Service predate {report.events_since}"
    if (reason == ANNOUNCED) == announced:
        return AGREES, f"its last Event, {reason} at {at}, says the same"
    return STALE, (
        f"its last Event, {reason} at {at}, says otherwise (Events are rate-limited: "
        "one per --service-event-interval)"
    )


def _last_events(events: Iterable[Obj], uid: str) -> dict[str, tuple[str, str]]:
    """Node -> the latest (reason, time) of its Announced/Withdrawn Events on the Service."""
    out: dict[str, tuple[str, str]] = {}
    for ev in events:
        if ev.get("reason") not in (ANNOUNCED, WITHDRAWN):
            continue
        if str((ev.get("involvedObject") or {}).get("uid", "")) != uid:
            continue
        node = str((ev.get("source") or {}).get("host") or ev.get("reportingInstance") or "")
        at = str(ev.get("lastTimestamp") or ev.get("eventTime") or "")
        if node and (node not in out or at > out[node][1]):
            out[node] = (str(ev["reason"]), at)
    return out
