"""Which of a node's announce/withdraw changes to tell, at most one per Service per interval.

A Service whose endpoints flap would otherwise fill ``kubectl describe service`` with
one Event per flip from every node. Each node tells at most one change per Service per
interval; a change that arrives sooner waits for the interval's end and is told then,
if the Service's state still differs from the last one told (a flip and its flip back
in between tell nothing). So the last Event a node wrote on a Service always says what
it does now, at most one interval late.

The first pass of a process only sets the baseline: a restart is not a change of what
the node announces, and telling 10,000 Services so at once would flood the API server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The reasons of the Events telling a change (``announcer.announcements`` writes them).
ANNOUNCED = "Announced"
WITHDRAWN = "Withdrawn"


@dataclass(frozen=True)
class Change:
    key: str  # the assignment key
    announced: bool
    reason: str | None  # why not announced (or not fully), as decide returned it


class ChangeLimiter:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._told: dict[str, tuple[bool, float]] = {}  # key -> (state told, when told)
        self._pending: dict[str, Change] = {}  # keys whose state differs from the one told
        self._has_baseline = False

    @property
    def has_baseline(self) -> bool:
        return self._has_baseline

    def baseline(self, announced: set[str], keys: set[str]) -> None:
        """The state of every Service after the first pass, told to nobody."""
        self._told = {k: (k in announced, -math.inf) for k in keys}
        self._pending.clear()
        self._has_baseline = True

    def observe(self, key: str, announced: bool | None, reason: str | None) -> None:
        """A Service's state now; None: it has no assignment any more, so nothing to tell."""
        if announced is None:
            self._told.pop(key, None)
            self._pending.pop(key, None)
            return
        told = self._told.setdefault(key, (False, -math.inf))  # a new Service was not announced
        if told[0] == announced:
            self._pending.pop(key, None)
        else:
            self._pending[key] = Change(key, announced, reason)

    def tracked(self) -> set[str]:
        return set(self._told)

    def due(self, now: float) -> list[Change]:
        """The changes to tell now; each is then the Service's last told state."""
        out = [c for k, c in self._pending.items() if self._told[k][1] + self.interval <= now]
        for c in out:
            self._told[c.key] = (c.announced, now)
            del self._pending[c.key]
        return sorted(out, key=lambda c: c.key)

    def next_due(self) -> float | None:
        """When the earliest waiting change may be told; None when nothing waits."""
        return min((self._told[k][1] + self.interval for k in self._pending), default=None)
