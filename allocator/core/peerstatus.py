"""BGPPeer conditions: can the announcers use this peer, and if not, why.

The allocator is the one writer of a BGPPeer's ``status.conditions``; each announcer
reports its own sessions in its node's BGPSessionStatus. What is decided here needs
no node's view: the spec (the same :func:`exalb.bgppeer.parse_spec` the announcer
refuses a peer with) and which Nodes the selectors match. Whether the password Secret
exists is not decided here: the allocator may not list the BGP password Secrets (least
privilege, proven by tests/integration/security), so each announcer reports, in its
node's BGPSessionStatus, the peers selecting it that it cannot use and why; condition
Usable gathers those reports. Data in, conditions out; the time of a transition is
given, not read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exalb.assignments.selectors import any_matches
from exalb.bgppeer import SpecError, parse_spec
from exalb.conditions import Condition
from exalb.sessionstatus import ESTABLISHED, down_summary

VALID = "Valid"
NODES_SELECTED = "NodesSelected"
USABLE = "Usable"
TYPES = (VALID, NODES_SELECTED, USABLE)  # peer_conditions; peer_status adds ESTABLISHED

Labels = Mapping[str, str]
Reports = Mapping[str, Mapping[str, str]]  # node -> unusable peer -> the announcer's reason
# node -> peer -> its BGPSessionStatus ``status.peers[]`` entry
Sessions = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class PeerStatus:
    conditions: tuple[Condition, ...]
    established: int  # selected nodes whose session with the peer is established
    selected: int

    @property
    def summary(self) -> str:
        """``2/3``: what ``kubectl get bgppeers`` shows."""
        return f"{self.established}/{self.selected}"


def peer_status(
    name: str,
    spec: Mapping[str, Any],
    secrets_namespace: str,
    nodes: Mapping[str, Labels],
    reports: Reports,
    sessions: Sessions,
) -> PeerStatus:
    """Everything the allocator writes on the peer: its conditions and the established count."""
    try:
        parsed = parse_spec(spec, secrets_namespace)
    except SpecError as exc:
        why = "the spec is not valid (see condition Valid)"
        unknown = (Condition(t, "Unknown", "InvalidSpec", why) for t in (*TYPES[1:], ESTABLISHED))
        return PeerStatus((Condition(VALID, "False", "InvalidSpec", str(exc)), *unknown), 0, 0)
    selected = sorted(
        n for n, labels in nodes.items() if any_matches(parsed.node_selectors, labels)
    )
    established, up = established_condition(name, selected, sessions)
    conditions = (
        Condition(VALID, "True", "Valid", "the announcers accept this spec"),
        nodes_condition(len(selected), len(nodes)),
        usable_condition(name, selected, reports),
        established,
    )
    return PeerStatus(conditions, up, len(selected))


def established_condition(
    name: str, selected: Sequence[str], sessions: Sessions
) -> tuple[Condition, int]:
    """Is peer ``name``'s session established on every selected node, and on how many?

    A selected node that reports no session with the peer counts as not established
    (its announcer is not running, cannot use the peer, or has not written yet); each
    down session is named with the router's NOTIFICATION if one ended it.
    """
    if not selected:
        return Condition(ESTABLISHED, "Unknown", "NoNodesSelected", "no Nodes selected"), 0
    down = []
    for node in selected:
        entry = (sessions.get(node) or {}).get(name)
        if entry is None:
            down.append(f"{node}: no session reported")
        elif entry.get("state") != "up":
            down.append(down_summary(node, entry))
    up = len(selected) - len(down)
    if down:
        message = f"established on {up} of {len(selected)} selected nodes; " + "; ".join(down)
        return Condition(ESTABLISHED, "False", "NotEstablished", message), up
    message = f"established on all {up} selected nodes"
    return Condition(ESTABLISHED, "True", "Established", message), up


def peer_conditions(
    name: str,
    spec: Mapping[str, Any],
    secrets_namespace: str,
    nodes: Mapping[str, Labels],
    reports: Reports,
) -> tuple[Condition, ...]:
    """The peer's conditions from its spec, the labels of every Node (by name) and
    what the announcers report of the peers they cannot use (by node); no sessions."""
    return peer_status(name, spec, secrets_namespace, nodes, reports, {}).conditions[: len(TYPES)]


def nodes_condition(matched: int, total: int) -> Condition:
    if matched == 0:
        why = f"nodeSelectors match none of the {total} Nodes" if total else "there are no Nodes"
        return Condition(
            NODES_SELECTED, "False", "NoNodesSelected", f"{why}: no node runs a session with it"
        )
    return Condition(
        NODES_SELECTED, "True", "NodesSelected", f"nodeSelectors match {matched} of {total} Nodes"
    )


def usable_condition(name: str, selected: Sequence[str], reports: Reports) -> Condition:
    """Can every selected node that reported run a session with peer ``name``?

    Only the announcer knows (it alone reads the password Secret), so a selected node
    whose announcer has not written its BGPSessionStatus yet is not counted; nodes
    refusing the peer for the same reason are named together.
    """
    reported = [n for n in selected if n in reports]
    if not reported:
        why = "no Nodes selected" if not selected else "no selected node has reported yet"
        return Condition(USABLE, "Unknown", "NotReported", why)
    by_reason: dict[str, list[str]] = {}
    for node in reported:
        reason = reports[node].get(name)
        if reason is not None:
            by_reason.setdefault(reason, []).append(node)
    if not by_reason:
        return Condition(
            USABLE, "True", "Usable", f"usable on the {len(reported)} selected nodes that reported"
        )
    message = "; ".join(f"{', '.join(ns)}: {why}" for why, ns in sorted(by_reason.items()))
    return Condition(USABLE, "False", "UnusableOnNodes", message)
