"""What an announcer tells about its decision inputs: ``BGPSessionStatus.status.decision``.

Written by the announcer and read by ``exalbctl explain``, through these two functions
only, so the format has one definition. It carries the flags that change decisions
(the CLI decides with the node's own flags, not defaults), what the announcer concluded
about its node and peers (a CLI that concludes otherwise from the API's objects has
found a stale or broken announcer), the peers BFD holds down, and since when its
Announced/Withdrawn Events are its word (``core.transitions``: older ones are a previous
process's, or predate changes it did not tell one by one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .datapath import CheckState, Probe
from .decide import Context
from .model import Drain, NodeCommunity, Options

# Data path checks listed per node: every one that is not passing, passing ones up to
# this many, so a node checking thousands of Services keeps its status object small.
MAX_PASSING_LISTED = 500


@dataclass(frozen=True)
class DecisionReport:
    options: Options
    node_reason: str | None  # decide.node_problem's, None when the node may announce
    peers: tuple[str, ...]  # usable peers selecting the node, by name
    bfd_down: tuple[str, ...]  # of those, the ones BFD holds down (no session runs)
    events_since: str  # RFC 3339, seconds
    drain_started: float | None = None  # epoch seconds: since when the node is drained
    checks: Mapping[str, CheckState] = field(default_factory=dict)  # assignment key -> state
    passing_omitted: int = 0  # passing checks left out of ``checks`` (MAX_PASSING_LISTED)
    # assignment key -> (its addresses held back as just assigned, until when; epoch seconds)
    held: Mapping[str, tuple[frozenset[str], float]] = field(default_factory=dict)


def decision_report(
    ctx: Context,
    opts: Options,
    bfd_down: Iterable[str],
    events_since: str,
    drain_started: float | None = None,
    checks: Mapping[str, CheckState] | None = None,
    held: Mapping[str, tuple[frozenset[str], float]] | None = None,
) -> dict[str, Any]:
    drain = opts.drain
    listed, omitted = _listed_checks(checks or {})
    holds = {k: {"addresses": sorted(a), "until": t} for k, (a, t) in (held or {}).items()}
    return {
        "nodeReason": ctx.node_reason or "",
        "peers": list(ctx.peer_names),
        "bfdDown": sorted(bfd_down),
        "eventsSince": events_since,
        **({"drainStarted": drain_started} if drain_started is not None else {}),
        **({"dataPath": listed} if listed else {}),
        **({"dataPathPassingOmitted": omitted} if omitted else {}),
        **({"heldNewAddresses": holds} if holds else {}),
        "options": {
            **(
                {
                    "drainOnCordon": drain.on_cordon,
                    "drainTaints": sorted(drain.taints),
                    "drainSeconds": drain.seconds,
                }
                if drain is not None
                else {}
            ),
            "ignoreExcludeLB": opts.ignore_exclude_lb,
            "announceDelay": opts.announce_delay,
            "holdNewAddresses": opts.hold_new_addresses,
            "nextHopV4": opts.next_hop_v4 or "",
            "nextHopV6": opts.next_hop_v6 or "",
            "addressTypes": list(opts.address_types),
            "gracefulShutdown": opts.graceful_shutdown,
            **_node_community_option(opts.node_community),
        },
    }


def report_from(node: str, raw: Any) -> DecisionReport | None:
    """The report in a ``status.decision``; None when there is none (an older announcer)."""
    if not isinstance(raw, Mapping):
        return None
    o = raw.get("options") or {}
    types = o.get("addressTypes")
    opts = Options(
        node_name=node,
        ignore_exclude_lb=bool(o.get("ignoreExcludeLB", False)),
        announce_delay=float(o.get("announceDelay") or 0.0),
        hold_new_addresses=float(o.get("holdNewAddresses") or 0.0),
        next_hop_v4=str(o.get("nextHopV4") or "") or None,
        next_hop_v6=str(o.get("nextHopV6") or "") or None,
        address_types=tuple(str(t) for t in types) if types else Options(node).address_types,
        graceful_shutdown=bool(o.get("gracefulShutdown", False)),
        drain=_drain(o),
        node_community=_node_community(o),
    )
    started = raw.get("drainStarted")
    return DecisionReport(
        options=opts,
        node_reason=str(raw.get("nodeReason") or "") or None,
        peers=tuple(str(p) for p in raw.get("peers") or ()),
        bfd_down=tuple(str(p) for p in raw.get("bfdDown") or ()),
        events_since=str(raw.get("eventsSince") or ""),
        drain_started=float(started) if isinstance(started, int | float) else None,
        checks=_checks_from(raw.get("dataPath")),
        passing_omitted=int(raw.get("dataPathPassingOmitted") or 0),
        held=_held_from(raw.get("heldNewAddresses")),
    )


def _held_from(raw: Any) -> dict[str, tuple[frozenset[str], float]]:
    if not isinstance(raw, Mapping):
        return {}
    out = {}
    for key, hold in raw.items():
        if isinstance(hold, Mapping) and isinstance(hold.get("until"), int | float):
            ips = frozenset(str(ip) for ip in hold.get("addresses") or ())
            out[str(key)] = (ips, float(hold["until"]))
    return out


def _listed_checks(checks: Mapping[str, CheckState]) -> tuple[list[dict[str, Any]], int]:
    """Not passing first, then passing up to MAX_PASSING_LISTED; how many were left out."""
    failing = sorted(k for k, s in checks.items() if not s.passing)
    passing = sorted(k for k, s in checks.items() if s.passing)
    shown = failing + passing[:MAX_PASSING_LISTED]
    return [_check_json(k, checks[k]) for k in shown], max(0, len(passing) - MAX_PASSING_LISTED)


def _check_json(key: str, s: CheckState) -> dict[str, Any]:
    return {
        "service": key,
        "target": s.last.target,
        "ok": s.last.ok,
        "detail": s.last.detail,
        "at": s.last.at,
        "passes": s.passes,
        "failed": s.failed,
    }


def _checks_from(raw: Any) -> dict[str, CheckState]:
    out: dict[str, CheckState] = {}
    for c in raw if isinstance(raw, list) else ():
        if not isinstance(c, Mapping) or not c.get("service"):
            continue
        probe = Probe(
            str(c.get("target", "")),
            bool(c.get("ok", False)),
            str(c.get("detail", "")),
            float(c.get("at") or 0.0),
        )
        out[str(c["service"])] = CheckState(probe, int(c.get("passes") or 0), bool(c.get("failed")))
    return out


def _drain(o: Mapping[str, Any]) -> Drain | None:
    if "drainSeconds" not in o:
        return None
    return Drain(
        on_cordon=bool(o.get("drainOnCordon", False)),
        taints=frozenset(str(t) for t in o.get("drainTaints") or ()),
        seconds=float(o.get("drainSeconds") or 0.0),
    )


def _node_community_option(tag: NodeCommunity | None) -> dict[str, Any]:
    """``--node-large-community``: absent when off; no ``globalAdmin``: each session's ASN."""
    if tag is None:
        return {}
    admin = {} if tag.global_admin is None else {"globalAdmin": tag.global_admin}
    return {"nodeLargeCommunity": {**admin, "function": tag.function}}


def _node_community(o: Mapping[str, Any]) -> NodeCommunity | None:
    raw = o.get("nodeLargeCommunity")
    if not isinstance(raw, Mapping):
        return None
    admin = raw.get("globalAdmin")
    return NodeCommunity(None if admin is None else int(admin), int(raw.get("function") or 0))
