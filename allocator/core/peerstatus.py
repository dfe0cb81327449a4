"""BGPPeer conditions: can the announcers use this peer, and if not, why.

The allocator is the one writer of a BGPPeer's ``status.conditions``; each announcer
reports its own sessions in its node's BGPSessionStatus. What is decided here needs
no node's view: the spec (the same :func:`exalb.bgppeer.parse_spec` the announcer
refuses a peer with) and which Nodes the selectors match. Whether the password Secret
exists is not decided here: the allocator may not list the BGP password Secrets (least
privilege, proven by tests/integration/security), so each announcer reports it.
Data in, conditions out; the time of a transition is given, not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exalb.assignments.selectors import any_matches
from exalb.bgppeer import Peer, SpecError, parse_spec

VALID = "Valid"
NODES_SELECTED = "NodesSelected"
TYPES = (VALID, NODES_SELECTED)

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def peer_conditions(
    spec: Mapping[str, Any], secrets_namespace: str, nodes: Iterable[Labels]
) -> tuple[Condition, ...]:
    """The peer's conditions from its spec and the labels of every Node."""
    try:
        parsed = parse_spec(spec, secrets_namespace)
    except SpecError as exc:
        return (
            Condition(VALID, "False", "InvalidSpec", str(exc)),
            Condition(
                NODES_SELECTED,
                "Unknown",
                "InvalidSpec",
                "the spec is not valid (see condition Valid)",
            ),
        )
    return (
        Condition(VALID, "True", "Valid", "the announcers accept this spec"),
        nodes_condition(parsed, nodes),
    )


def nodes_condition(spec: Peer, nodes: Iterable[Labels]) -> Condition:
    total = matched = 0
    for labels in nodes:
        total += 1
        matched += any_matches(spec.node_selectors, labels)
    if matched == 0:
        why = f"nodeSelectors match none of the {total} Nodes" if total else "there are no Nodes"
        return Condition(
            NODES_SELECTED, "False", "NoNodesSelected", f"{why}: no node runs a session with it"
        )
    return Condition(
        NODES_SELECTED, "True", "NodesSelected", f"nodeSelectors match {matched} of {total} Nodes"
    )


def with_transitions(
    current: Sequence[Mapping[str, Any]],
    wanted: Iterable[Condition],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """``wanted`` in the API's shape, keeping each ``lastTransitionTime`` whose status held.

    A condition whose status did not change keeps the time it last changed, even when
    its reason or message did; a new or changed one gets ``now``.
    """
    before = {str(c.get("type")): c for c in current}
    out = []
    for c in wanted:
        prev = before.get(c.type) or {}
        held = prev.get("status") == c.status and prev.get("lastTransitionTime")
        out.append(
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": prev["lastTransitionTime"] if held else now,
                "observedGeneration": generation,
            }
        )
    return out
