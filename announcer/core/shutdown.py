"""When a stopping announcer closes a session: withdraw within a budget, then Cease.

What a SIGTERM must achieve is that the router stops sending this node traffic for
any of its routes as soon as it can, and never keeps a route the node no longer
serves. Two BGP messages do that:

* an explicit withdrawal, route by route: the router changes its RIB while the
  session is still up, and passes the change on to its own peers;
* the Cease NOTIFICATION: by RFC 4271 (8.2.2) the router then deletes every route of
  the session at once. Graceful restart does not keep them: ExaBGP never sets the
  RFC 8538 N bit, and without it RFC 4724 (4.2) retains routes only when a session
  ends without a NOTIFICATION.

So every route is first withdrawn explicitly (one ``clear adj-rib out``), and the
Cease follows once ExaBGP reports every withdrawal on the wire, ``hold`` seconds
later so the router has processed them. If that takes longer than ``budget``
(ExaBGP needs CPU time per route, and a loaded node gives it little), the Cease goes
at once and the router drops the rest of the routes with the session: for its
forwarding the same outcome. It bounds the wait; it is no shortcut (ExaBGP still runs
the withdraw-all written before the Cease, and the router's session-down handling was
measured no faster than the withdrawals). One case has no budget: a session with
graceful restart announced. ExaBGP then closes it without a NOTIFICATION, and the
router's helper keeps every route not yet withdrawn, as stale, for the restart
time, so the withdrawals are waited for until ``timeout``.

Pure: the speaker feeds it ExaBGP's sent UPDATEs and the clock, and acts on the
answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SESSION_DOWN = "session down"  # the router has dropped the routes already
WITHDRAWN = "withdrawn"  # every route withdrawn explicitly, and held
BUDGET = "budget"  # the Cease drops the routes not yet withdrawn
TIMEOUT = "timeout"  # graceful restart: routes not yet withdrawn stay stale at the router


@dataclass(frozen=True)
class ShutdownTimes:
    budget: float  # seconds explicit withdrawals may take before the Cease drops the rest
    hold: float  # seconds between the last withdrawal on the wire and the Cease
    timeout: float  # seconds for the whole sequence, whatever happens


@dataclass(frozen=True)
class Cease:
    """Close the session now; ``unconfirmed`` routes had no withdrawal on the wire."""

    why: str
    unconfirmed: int


class PeerShutdown:
    def __init__(
        self,
        announced: Iterable[str],
        started: float,
        times: ShutdownTimes,
        graceful_restart: bool,
    ) -> None:
        """``announced``: the routes the router holds from this session at ``started``;
        ``graceful_restart``: announced by this side, so the close keeps routes."""
        self.unconfirmed = set(announced)
        self.started = started
        self.times = times
        self.graceful_restart = graceful_restart
        # When the last withdrawal went out (None: nothing was announced, or not yet).
        self.withdrawn_at: float | None = None

    def sent(self, withdrawn: Iterable[str], now: float) -> None:
        """ExaBGP reports an UPDATE on the wire withdrawing ``withdrawn``."""
        if not self.unconfirmed:
            return
        self.unconfirmed.difference_update(withdrawn)
        if not self.unconfirmed:
            self.withdrawn_at = now

    def decide(self, now: float, session_up: bool) -> Cease | float:
        """Cease now, or the time at which to ask again (sooner if an UPDATE goes out)."""
        left = len(self.unconfirmed)
        if not session_up:
            return Cease(SESSION_DOWN, left)
        end = self.started + self.times.timeout
        if not left:
            if self.withdrawn_at is None:  # nothing to withdraw: nothing to hold for
                return Cease(WITHDRAWN, 0)
            at = min(self.withdrawn_at + self.times.hold, end)
            return Cease(WITHDRAWN, 0) if now >= at else at
        if now >= end:
            return Cease(TIMEOUT if self.graceful_restart else BUDGET, left)
        if self.graceful_restart:
            return end
        at = min(self.started + self.times.budget, end)
        return Cease(BUDGET, left) if now >= at else at
