"""Kubernetes conditions (``metav1.Condition``), decided as data, written with their history.

Shared by every writer of conditions (the allocator on BGPPeers, the announcer on its
BGPSessionStatus) so a condition means the same thing, and keeps its transition time
by the same rule, wherever it is written. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def with_transitions(
    current: Sequence[Mapping[str, Any]],
    wanted: Iterable[Condition],
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """``wanted`` in the API's shape, keeping each ``lastTransitionTime`` whose status held.

    A condition whose status did not change keeps the time it last changed, even when
    its reason or message did; a new or changed one gets ``now``. ``generation`` is the
    object's ``metadata.generation`` the conditions were decided from; None for an object
    without a spec, whose conditions observe no generation of their own.
    """
    before = {str(c.get("type")): c for c in current}
    out = []
    for c in wanted:
        prev = before.get(c.type) or {}
        held = prev.get("status") == c.status and prev.get("lastTransitionTime")
        shown = {
            "type": c.type,
            "status": c.status,
            "reason": c.reason,
            "message": c.message,
            "lastTransitionTime": prev["lastTransitionTime"] if held else now,
        }
        if generation is not None:
            shown["observedGeneration"] = generation
        out.append(shown)
    return out
