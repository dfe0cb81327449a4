"""Which of a node's announce/withdraw changes to tell, at most one per Service per interval.

A Service whose endpoints flap would otherwise fill ``kubectl describe service`` with
one Event per flip from every node. Each node tells at most one change per Service per
interval; a change that arrives sooner waits for the interval's end and is told then,
if the Service's state still differs from the last one told (a flip and its flip back
in between tell nothing). So the last Event a node wrote on a Service says what it does
now, at most one interval late.

A change of the node itself (NotReady, its peers gone) or a restart changes every
Service at once: one Event per Service would flood the API server with 10,000 writes.
When more than ``burst`` changes are due at once they are told to nobody (the caller
logs one line), and ``silenced_at`` records when: Events older than that are no longer
the node's word. A new process starts silenced (its predecessor's Events are not its
word either), and a Service no Event was told about is taken as not announced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# The reasons of the Events telling a change (``announcer.announcements`` writes them).
ANNOUNCED = "Announced"
WITHDRAWN = "Withdrawn"


@dataclass(frozen=True)
class Change:
    key: str  # the assignment key
    announced: bool
    reason: str | None  # why not announced (or not fully), as decide returned it


@dataclass(frozen=True)
class Due:
    told: list[Change] = field(default_factory=list)  # to write an Event each
    silenced: list[Change] = field(default_factory=list)  # too many at once: no Event each


class ChangeLimiter:
    def __init__(self, interval: float, burst: int, now: float) -> None:
        self.interval = interval
        self.burst = burst
        self.silenced_at = now
        self._told: dict[str, tuple[bool, float]] = {}  # key -> (state told, when told)
        self._pending: dict[str, Change] = {}  # keys whose state differs from the one told

    def observe(self, key: str, announced: bool | None, reason: str | None) -> None:
        """A Service's state now; None: it has no assignment any more, so nothing to tell."""
        if announced is None:
            self._told.pop(key, None)
            self._pending.pop(key, None)
            return
        told = self._told.get(key, (False, -math.inf))
        if told[0] == announced:
            self._pending.pop(key, None)
        else:
            self._pending[key] = Change(key, announced, reason)

    def tracked(self) -> set[str]:
        """The Services whose state differs from "not announced", or may."""
        return self._told.keys() | self._pending.keys()

    def due(self, now: float) -> Due:
        """The changes to tell now; each is then the Service's last told state."""
        ready = sorted(
            (c for k, c in self._pending.items() if self._last(k) + self.interval <= now),
            key=lambda c: c.key,
        )
        for c in ready:
            self._told[c.key] = (c.announced, now)
            del self._pending[c.key]
        if len(ready) > self.burst:
            self.silenced_at = now
            return Due(silenced=ready)
        return Due(told=ready)

    def next_due(self) -> float | None:
        """When the earliest waiting change may be told; None when nothing waits."""
        return min((self._last(k) + self.interval for k in self._pending), default=None)

    def _last(self, key: str) -> float:
        told = self._told.get(key)
        return told[1] if told is not None else -math.inf
