"""Events on a Service when this node starts or stops announcing it.

``kubectl describe service`` then tells the story node by node: ``Announced`` when the
node starts announcing the Service's IPs, ``Withdrawn`` with the reason when it stops.
Rate-limited per Service by ``core.transitions`` (the last Event says what the node does
now, at most one interval late); more changes at once than a burst (a restart, the node
turning NotReady) are one log line instead. Written through the announcer's one
:class:`EventRecorder`, like the ``UnjustifiedPrefix`` warnings of ``reports``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from announcer.core.desired import DesiredState
from announcer.core.transitions import ANNOUNCED, WITHDRAWN, Change, ChangeLimiter
from announcer.reports import EventSink
from exalb.assignments import Assignment
from exalb.kube.events import ObjectRef

BURST = 20  # more changes due at once are logged, not told one Event each


class Announcements:
    def __init__(
        self,
        node: str,
        events: EventSink | None,
        interval: float,
        now: float,
        log: structlog.stdlib.BoundLogger,
    ) -> None:
        self._node = node
        self._events = events
        self._limiter = ChangeLimiter(interval, BURST, now)
        self._log = log

    def events_since(self) -> str:
        """Older Events of this node on a Service are not its word (``core.report``)."""
        return datetime.fromtimestamp(self._limiter.silenced_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def passed(
        self,
        state: DesiredState,
        keys: set[str] | None,
        assignment: Callable[[str], Assignment | None],
        now: float,
    ) -> float | None:
        """After a pass that re-decided ``keys`` (None: every Service); when to come back.

        Returns when a change held back by the rate limit is due, so the reconciler
        wakes to tell it even if nothing else happens.
        """
        if self._events is None:
            return None
        if keys is None:  # a full pass: every Service with an assignment, and those gone
            keys = self._limiter.tracked() | set(state.reasons) | state.announced
        for key in keys:
            gone = assignment(key) is None
            announced = None if gone else key in state.announced
            self._limiter.observe(key, announced, state.reasons.get(key))
        due = self._limiter.due(now)
        for change in due.told:
            self._tell(change, assignment(change.key))
        if due.silenced:
            self._log.info(
                "many Services changed at once; not told one Event each",
                announced=sum(1 for c in due.silenced if c.announced),
                withdrawn=dict(Counter(c.reason for c in due.silenced if not c.announced)),
            )
        return self._limiter.next_due()

    def _tell(self, change: Change, a: Assignment | None) -> None:
        if a is None or self._events is None:
            return
        ips = ", ".join(a.ips)
        ref = ObjectRef("Service", a.namespace, a.name, a.uid)
        if change.announced:
            message = f"node {self._node} announces {ips}"
            self._events.record(ref, "Normal", ANNOUNCED, message)
        else:
            message = f"node {self._node} no longer announces {ips}: {change.reason}"
            self._events.record(ref, "Normal", WITHDRAWN, message)
