"""When to start ExaBGP again after it exited: at once, unless it keeps exiting.

A killed or crashed ExaBGP takes its routes off the router until a new one is up
and has sent them again, so the first restart waits for nothing. Back-off is for a
crash loop (a bad config, a router that drops us on sight): each exit that follows
the previous one within ``window`` seconds doubles the wait, from ``base`` to
``cap``; an exit after a quiet ``window`` starts over with an immediate restart.
Times are passed in (any monotonic clock), so the policy is data in, decision out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RestartBackoff:
    base: float = 0.5
    cap: float = 30.0
    window: float = 60.0
    _last_exit: float | None = None
    _repeats: int = 0  # exits in a row, each within ``window`` of the one before

    def after_exit(self, now: float) -> float:
        """Record an exit at ``now``; seconds to wait before starting ExaBGP again."""
        if self._last_exit is not None and now - self._last_exit < self.window:
            self._repeats += 1
        else:
            self._repeats = 0
        self._last_exit = now
        if self._repeats == 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(self._repeats - 1, 32))
