"""When the current drain of this node began: the start of its GRACEFUL_SHUTDOWN period.

The API records no time for a cordon (``spec.unschedulable`` is a bare flag) and
a taint's ``timeAdded`` is set for NoExecute taints only, so the announcer keeps
the moment it first saw the node drained. An announcer restarted mid-drain
starts the period again: routers then hear GRACEFUL_SHUTDOWN once more before the
withdrawal, never a withdrawal without it.
"""

from __future__ import annotations


class DrainClock:
    def __init__(self) -> None:
        self.started: float | None = None

    def observe(self, drained: bool, now: float) -> float | None:
        """The start of the uninterrupted drain ``now`` is in, or None when not drained."""
        if not drained:
            self.started = None
        elif self.started is None:
            self.started = now
        return self.started
