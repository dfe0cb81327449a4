"""What one peer's ExaBGP holds, what it will hold, and what it should hold.

Four views of the routes, per prefix:

* ``desired``: what the decision wants, replaced wholesale or changed a few at a time;
* ``sent``: what ExaBGP will hold once every command written so far is done;
* ``acked``: what ExaBGP has confirmed with ``done``;
* in flight: the commands written and not yet answered, oldest first.

ExaBGP answers commands in the order they were written, so an answer belongs to
the oldest command in flight. A rejected command is undone in ``sent`` (taking
account of later commands in flight for the same prefixes) and its prefixes are
marked changed, so the next :meth:`RouteLedger.take_commands` sends them again.

A change to a prefix's link bandwidth alone (weighted ECMP follows each pod as a
Deployment scales) is coalesced: with ``weight_hold`` set, the router hears at
most one such change per prefix in that many seconds, and the last value wins.
Every other change, announce or withdraw goes out at once, with the current
weight. :meth:`RouteLedger.due` says when a held change may go.

A (re)started ExaBGP is given ``desired`` as the static routes of its config
(:meth:`seed`); once it is attached, those routes count as sent and
acknowledged and only the difference to what is desired by then is sent. A
prefix that stays desired across a restart is therefore never withdrawn. When
nothing is desired any more (a shutdown), everything is withdrawn with one
command instead of a list of prefixes.

Pure: no clock, no threads, no I/O; the speaker holds the lock and the socket.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .diff import Command, commands, withdraw_all
from .model import Attrs, Routes


@dataclass(frozen=True)
class Sent:
    """A command written to ExaBGP, with when the decision behind it was made."""

    command: Command
    decided_at: float


class RouteLedger:
    def __init__(self, weight_hold: float = 0.0) -> None:
        self.weight_hold = weight_hold
        self.desired: Routes = {}
        self.decided_at = 0.0
        self.sent: Routes = {}
        self.acked: Routes = {}
        self.in_flight: deque[Sent] = deque()
        self.attached = False
        # Prefixes changed since the last take_commands; None: compare the whole tables.
        self._changed: set[str] | None = None
        self._weight_sent: dict[str, float] = {}  # prefix -> when its bandwidth last changed
        self._held: dict[str, float] = {}  # prefix -> when its held weight change may go

    # --- the decision's side ---------------------------------------------
    def set_desired(self, routes: Mapping[str, Attrs], decided_at: float) -> bool:
        """Replace the whole desired table; False when nothing changed."""
        if routes == self.desired:
            return False
        self.desired = dict(routes)
        self._changed = None
        self.decided_at = decided_at
        return True

    def update(self, changes: Mapping[str, Attrs | None], decided_at: float) -> None:
        """Change some prefixes (None: no longer desired); only those are compared."""
        for prefix, attrs in changes.items():
            if attrs is None:
                self.desired.pop(prefix, None)
            else:
                self.desired[prefix] = attrs
        if self._changed is not None:
            self._changed.update(changes)
        self.decided_at = decided_at

    # --- ExaBGP's side ---------------------------------------------------
    def seed(self) -> tuple[Routes, float]:
        """The routes a starting ExaBGP loads from its config, and when they were decided."""
        return dict(self.desired), self.decided_at

    def attach(self, seed: Mapping[str, Attrs]) -> None:
        """A new ExaBGP is running with ``seed`` loaded (every seeded route announced)."""
        self.acked = dict(seed)
        self.sent = dict(seed)
        self.in_flight.clear()
        self._changed = None  # desired may have moved on since the seed was taken
        self._weight_sent.clear()
        self._held.clear()
        self.attached = True

    def detach(self) -> None:
        """ExaBGP is gone, and with it its routes and every unanswered command."""
        self.acked = {}
        self.sent = {}
        self.in_flight.clear()
        self._changed = None
        self._weight_sent.clear()
        self._held.clear()
        self.attached = False

    def take_commands(self, now: float = 0.0) -> list[Command]:
        """The commands that bring ``sent`` to ``desired`` (less held weight changes), now
        counted as in flight; ``now`` is on the clock :meth:`due` answers in."""
        if not self.attached:
            return []
        changed, self._changed = self._changed, set()
        if not self.desired and self.sent:
            # ``sent`` is all ExaBGP will hold once the commands in flight are done.
            self._held.clear()
            self._weight_sent.clear()
            out = [withdraw_all(self.sent)]
        else:
            out = self._diff(changed, now)
        for c in out:
            self.in_flight.append(Sent(c, self.decided_at))
            apply(self.sent, c)
        return out

    def _diff(self, changed: set[str] | None, now: float) -> list[Command]:
        """The commands for ``changed`` prefixes (None: all of them)."""
        want: Mapping[str, Attrs]
        have: Mapping[str, Attrs]
        if changed is None:
            want, have = self.desired, self.sent
        else:
            changed |= self._held.keys()
            want = {p: self.desired[p] for p in changed if p in self.desired}
            have = {p: self.sent[p] for p in changed if p in self.sent}
        if self.weight_hold > 0:
            want = self._hold_weights(want, have, now)
        return commands(want, have)

    def due(self) -> float | None:
        """When the earliest held weight change may be sent; None when none is held."""
        return min(self._held.values(), default=None)

    def _hold_weights(
        self, want: Mapping[str, Attrs], have: Mapping[str, Attrs], now: float
    ) -> Mapping[str, Attrs]:
        """``want`` with each weight-only change still inside its hold kept as ``have``."""
        self._held = {}
        held: dict[str, Attrs] = {}
        for prefix, attrs in want.items():
            old = have.get(prefix)
            if old is attrs or (old is not None and old.link_bandwidth == attrs.link_bandwidth):
                continue
            until = self._weight_sent.get(prefix, -math.inf) + self.weight_hold
            if old is not None and now < until and _weight_only(old, attrs):
                held[prefix] = old
                self._held[prefix] = until
            else:
                self._weight_sent[prefix] = now
        for prefix in [p for p in have if p not in want]:  # withdrawn: forget its hold
            self._weight_sent.pop(prefix, None)
        return {**want, **held} if held else want

    def answer(self, ok: bool) -> Sent | None:
        """ExaBGP's ``done`` (ok) or ``error`` for the oldest command in flight."""
        if not self.in_flight:
            return None
        item = self.in_flight.popleft()
        if ok:
            apply(self.acked, item.command)
            return item
        # What ExaBGP will hold for these prefixes without the rejected command: what it
        # acknowledged, as changed by the commands still in flight after it.
        expected = {prefix: self.acked.get(prefix) for prefix, _ in item.command.changes}
        for later in self.in_flight:
            for prefix, attrs in later.command.changes:
                if prefix in expected:
                    expected[prefix] = attrs
        apply(self.sent, Command("", tuple(expected.items())))
        if self._changed is not None:
            self._changed.update(expected)
        return item

    def converged(self) -> bool:
        """ExaBGP has acknowledged exactly the desired routes."""
        return not self.in_flight and self.acked == self.desired


def _weight_only(old: Attrs, new: Attrs) -> bool:
    """Whether ``new`` differs from ``old`` in the link bandwidth alone."""
    return replace(new, link_bandwidth=old.link_bandwidth) == old


def apply(table: Routes, command: Command) -> None:
    """Change ``table`` as ``command`` changes what ExaBGP holds."""
    for prefix, attrs in command.changes:
        if attrs is None:
            table.pop(prefix, None)
        else:
            table[prefix] = attrs
