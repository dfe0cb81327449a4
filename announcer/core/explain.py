"""Why one node does or does not announce one Service, with the evidence, for people.

The verdict is :func:`decide.decide_service`'s, the very function the announcer runs on
each pass, given a :class:`decide.Context` built by the same :func:`decide.context`; this
module only adds the evidence for the reason that function returned. So ``exalbctl
explain``, which calls it on the objects it reads, cannot disagree with an announcer that
reads the same objects with the same flags. The same goes for the path attributes: they
are the decision's own, so explain shows what the node sends, degraded or draining.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from exalb.assignments import LOCAL, Assignment, any_matches
from exalb.assignments.selectors import LabelSelector
from exalb.bgppeer import Peer

from . import datapath, decide
from .model import EXCLUDE_LABEL, Attrs, Endpoint, Node, Options
from .pools import REASONS as REFUSALS
from .pools import PoolSpace


@dataclass(frozen=True)
class Verdict:
    """One node and one Service: announced or not, the first failing check and its evidence.

    ``reason`` may be set while ``announced`` is true: some of the Service's prefixes
    are announced, another is not (refused by its pool, no next hop of its family).
    ``routes`` holds this Service's attributes; a prefix other Services share reaches
    the router with the union of theirs (``decide.merge_all``).
    """

    announced: bool
    reason: str | None
    evidence: str
    routes: Mapping[str, Mapping[str, Attrs]]  # peer name -> prefix -> its attributes
    node_reason: str | None  # why the node announces nothing at all (decide.node_problem)
    node_peers: tuple[str, ...]  # the usable peers selecting the node
    degraded: str = ""  # why the routes carry an advertisement's degraded attributes
    graceful_shutdown: str = ""  # why they carry GRACEFUL_SHUTDOWN (RFC 8326)


def explain(
    node: Node | None,
    peers: Iterable[Peer],
    opts: Options,
    now: float,
    pools: Mapping[str, PoolSpace],
    a: Assignment,
    endpoints: Sequence[Endpoint],
    drain_started: float | None = None,
    check: datapath.CheckState | None = None,
    held: tuple[frozenset[str], float] | None = None,
) -> Verdict:
    """``drain_started``: since when the announcer has seen its node drained, ``check``:
    its data path probes of the Service, ``held``: its addresses held back as just
    assigned, and until when (all from its report)."""
    peers = tuple(peers)
    ctx = decide.context(node, peers, opts, now, pools, drain_started)
    held_ips = held[0] if held is not None and now < held[1] else frozenset()
    d = decide.decide_service(ctx, a, endpoints, check, held_ips)
    routes = {peer: dict(sorted(r.items())) for peer, r in sorted(d.routes.items())}
    if d.reason in datapath.REASONS:
        dp = datapath.evidence(d.reason, a.data_path, check)
        text = f"announced to {', '.join(routes)}; {dp}" if routes else dp
    elif d.reason is None:
        text = f"announced to {', '.join(routes)}"
        if check is not None and any(adv.data_path_check for adv in a.advertisements):
            text += f"; data path: {check.last.evidence()}"
    elif d.reason in REFUSALS:
        text = "; ".join(r.message for r in d.refused)
    elif d.reason == decide.NEW_ADDRESS_HELD and held is not None:
        why = (
            f"{', '.join(sorted(held_ips))} assigned moments ago: held until {_stamp(held[1])} "
            f"so that kube-proxy on the Node programs it first "
            f"(--hold-new-addresses {opts.hold_new_addresses:g}s)"
        )
        text = f"announced to {', '.join(routes)}; {why}" if routes else why
    else:
        text = _evidence(d.reason, node, peers, opts, now, a, endpoints, ctx)
    return Verdict(
        bool(routes),
        d.reason,
        text,
        routes,
        ctx.node_reason,
        ctx.peer_names,
        _degraded(ctx, a, endpoints) if routes else "",
        _graceful_shutdown(ctx, opts, drain_started) if routes else "",
    )


def _degraded(ctx: decide.Context, a: Assignment, endpoints: Sequence[Endpoint]) -> str:
    """Why decide_service graded this node's routes down (``decide.degraded_grade``)."""
    state = decide.serving(a, endpoints, ctx.node_name)
    healthy = replace(state, terminating_only=False)
    selecting = [adv for adv in a.advertisements if any_matches(adv.node_selectors, ctx.labels)]
    why = []
    if any(decide.degraded_grade(adv, ctx, healthy) is not None for adv in selecting):
        why.append("the advertisement's degraded.nodeSelectors select the Node (a standby)")
    if state.terminating_only and any(adv.degraded is not None for adv in selecting):
        why.append("its only usable endpoints are terminating")
    return "; ".join(why)


def _graceful_shutdown(ctx: decide.Context, opts: Options, drain_started: float | None) -> str:
    """Why every route carries GRACEFUL_SHUTDOWN: the announcer stops, or the node drains."""
    if not ctx.graceful_shutdown:
        return ""
    if opts.graceful_shutdown:
        return "the announcer is stopping (SIGTERM with --graceful-shutdown-drain)"
    ends = decide.drain_ends(opts, drain_started)
    return f"the Node is cordoned or tainted for a drain; withdrawn at {_stamp(ends)}"


def _evidence(
    reason: str,
    node: Node | None,
    peers: tuple[Peer, ...],
    opts: Options,
    now: float,
    a: Assignment,
    endpoints: Sequence[Endpoint],
    ctx: decide.Context,
) -> str:
    if reason == decide.NODE_UNKNOWN or node is None:
        return f"no Node named {opts.node_name!r}"
    if reason == decide.NODE_NOT_READY:
        return f"the Node's Ready condition is not True{_since(node.ready_since)}"
    if reason == decide.NODE_READY_DELAY:
        since = node.ready_since or now
        return (
            f"Ready for {now - since:.0f}s, less than --announce-delay "
            f"{opts.announce_delay:g}s (announces at {_stamp(since + opts.announce_delay)})"
        )
    if reason == decide.NODE_NETWORK_UNAVAILABLE:
        return "the Node's NetworkUnavailable condition is True"
    if reason == decide.NODE_EXCLUDED:
        return f"the Node has the label {EXCLUDE_LABEL} (and --ignore-exclude-lb is off)"
    if reason == decide.NODE_DRAINED:
        return (
            "the Node is cordoned or carries a drain taint (--drain-on-cordon, --drain-taints), "
            "and its --drain-seconds of GRACEFUL_SHUTDOWN have passed"
        )
    if reason == decide.NOT_OWNER:
        wanted = " or ".join(_selectors(adv.node_selectors) for adv in a.advertisements)
        return f"no advertisement selects the Node's labels {_labels(node.labels)}: {wanted}"
    if reason in (decide.NO_LOCAL_ENDPOINTS, decide.NO_ENDPOINTS):
        return _endpoints_evidence(a, endpoints, node.name)
    if reason == decide.NO_PEERS:
        return _no_peers(peers, node)
    if reason == decide.NO_MATCHING_PEER:
        names = sorted({p for adv in a.advertisements for p in adv.peers})
        carried = [f"{p.name} ({'+'.join(f'IPv{v}' for v in p.families)})" for p in ctx.peers]
        return (
            f"the advertisements name peers {names or 'any'} with the Service's address "
            f"families; the Node's peers (and the families their sessions carry) are {carried}"
        )
    if reason.startswith("noIPv"):
        return (
            f"the Node has no address of types {list(opts.address_types)} in that family "
            "and no --next-hop override is set"
        )
    return reason


def _endpoints_evidence(a: Assignment, endpoints: Sequence[Endpoint], node: str) -> str:
    usable = [e for e in endpoints if e.usable]
    where = sorted({e.node or "?" for e in usable})
    here = [e for e in endpoints if e.node == node]
    if a.traffic_policy == LOCAL:
        return (
            f"externalTrafficPolicy Local: {len(here)} endpoint(s) on this node, none ready "
            f"or serving while terminating; usable endpoints are on {where or 'no node'}"
        )
    return f"{len(endpoints)} endpoint(s), none ready or serving while terminating"


def _no_peers(peers: tuple[Peer, ...], node: Node) -> str:
    selecting = [p for p in peers if any_matches(p.node_selectors, node.labels)]
    unusable = [f"{p.name}: {p.problem}" for p in selecting if p.problem is not None]
    if unusable:
        return "the BGPPeers selecting this node cannot be used: " + "; ".join(unusable)
    if not peers:
        return "there is no BGPPeer"
    return "no BGPPeer's nodeSelectors select the Node's labels " + _labels(node.labels)


def _selectors(selectors: tuple[LabelSelector, ...]) -> str:
    return "[" + ", ".join(str(s.to_json()) for s in selectors) + "]" if selectors else "[all]"


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def _since(at: float | None) -> str:
    return f" (since {_stamp(at)})" if at is not None else ""


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
