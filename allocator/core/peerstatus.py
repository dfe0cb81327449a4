"""BGPPeer conditions: can the announcers use this peer, and if not, why.

The allocator is the one writer of a BGPPeer's ``status.conditions``; each announcer
reports its own sessions in its node's BGPSessionStatus. What is decided here needs
no node's view: the spec (the same :func:`exalb.bgppeer.parse_spec` the announcer
refuses a peer with), whether the named Secret exists, and which Nodes the selectors
match. Data in, conditions out; the time of a transition is given, not read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from exalb.assignments.selectors import any_matches
from exalb.bgppeer import PASSWORD_KEY, PeerSpec, SpecError, parse_spec

VALID = "Valid"
SECRET_FOUND = "SecretFound"
NODES_SELECTED = "NodesSelected"
TYPES = (VALID, SECRET_FOUND, NODES_SELECTED)

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def peer_conditions(
    spec: Mapping[str, Any],
    namespace: str,
    nodes: Iterable[Labels],
    secrets: AbstractSet[str],
) -> tuple[Condition, ...]:
    """The peer's conditions from its spec, the labels of every Node and the Secret names.

    ``secrets`` holds the names of the Secrets in the peer's namespace: existence only.
    Whether the Secret has a ``password`` key is each announcer's to see (its warning log
    and ``exalb_announcer_peer_problem``), because the allocator does not read Secrets.
    """
    try:
        parsed = parse_spec(spec, namespace)
    except SpecError as exc:
        blocked = "the spec is not valid (see condition Valid)"
        return (
            Condition(VALID, "False", "InvalidSpec", str(exc)),
            Condition(SECRET_FOUND, "Unknown", "InvalidSpec", blocked),
            Condition(NODES_SELECTED, "Unknown", "InvalidSpec", blocked),
        )
    return (
        Condition(VALID, "True", "Valid", "the announcers accept this spec"),
        secret_condition(parsed, namespace, secrets),
        nodes_condition(parsed, nodes),
    )


def secret_condition(spec: PeerSpec, namespace: str, secrets: AbstractSet[str]) -> Condition:
    name = spec.password_secret
    if name is None:
        return Condition(SECRET_FOUND, "True", "NoSecretReferenced", "no passwordSecret is named")
    if name not in secrets:
        return Condition(
            SECRET_FOUND,
            "False",
            "SecretNotFound",
            f"Secret {name!r} does not exist in namespace {namespace!r}: no session runs",
        )
    return Condition(
        SECRET_FOUND,
        "True",
        "SecretExists",
        f"Secret {name!r} exists (each announcer checks its {PASSWORD_KEY!r} key)",
    )


def nodes_condition(spec: PeerSpec, nodes: Iterable[Labels]) -> Condition:
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
