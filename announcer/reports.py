"""Telling people what the announcer refused to believe: stale shards, invalid pools,
unjustified prefixes.

All are someone else's mistake (a deleted or hand-edited ConfigMap, a pool
edit, a pool removed under its Services), so each change is logged once, counted in a
metric, and an unjustified prefix is also a Warning Event on its Service,
where ``kubectl describe`` shows it. Only changes are reported: the reconciler
calls these after every pass with the current state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import structlog

from announcer.core.pools import REASONS, Refusal
from announcer.metrics import Metrics
from exalb.assignments import Assignment
from exalb.kube.events import ObjectRef

EVENT_REASON = "UnjustifiedPrefix"


class EventSink(Protocol):
    """``exalb.kube.events.EventRecorder``, as the reports use it."""

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None: ...


class ContractReports:
    def __init__(
        self, metrics: Metrics, events: EventSink | None, log: structlog.stdlib.BoundLogger
    ) -> None:
        self._metrics = metrics
        self._events = events
        self._log = log
        self._known: dict[str, dict[str, str]] = {}  # kind -> name -> its problem
        self._refused: dict[str, tuple[Refusal, ...]] = {}
        self._nothing_published = False
        self._peers: set[str] = set()
        for reason in REASONS:
            metrics.unjustified.labels(reason).set(0)

    def stale(self, shards: Mapping[str, str]) -> None:
        """``shards``: every stale shard and why (``Published.stale()``)."""
        if self._problems(
            "configmap",
            shards,
            "assignment ConfigMap stale; keeping its last good entries",
            "assignment ConfigMap readable again",
        ):
            self._metrics.assignments_stale.set(1 if shards else 0)

    def invalid_pools(self, invalid: Mapping[str, str]) -> None:
        """``invalid``: VIPPool name -> why its spec is invalid (``PoolSpaces.update``)."""
        self._problems(
            "pool",
            invalid,
            "VIPPool invalid; its last valid addresses (if any) still justify its prefixes",
            "VIPPool valid again (or deleted)",
        )

    def peers(self, problems: Mapping[str, str], names: Iterable[str]) -> None:
        """``problems``: BGPPeer name -> why no session runs for it; ``names``: every peer.

        The reason names the Secret and the namespace it was looked for in. Logged on
        change only: every pass converts every peer again.
        """
        self._problems(
            "peer", problems, "peer unusable: no session", "peer usable again (or deleted)"
        )
        current = set(names)
        for gone in self._peers - current:
            self._metrics.peer_problem.remove(gone)
        for name in current:
            self._metrics.peer_problem.labels(name).set(1 if name in problems else 0)
        self._peers = current

    def nothing_published(self, empty: bool) -> None:
        """No assignment ConfigMap exists and none was ever read: there is no last good state."""
        if empty and not self._nothing_published:
            self._log.warning(
                "no assignment ConfigMaps and no last good state: announcing nothing "
                "until the allocator publishes"
            )
        self._nothing_published = empty

    def refused(
        self,
        refused: Mapping[str, tuple[Refusal, ...]],
        assignment: Callable[[str], Assignment | None],
    ) -> None:
        """``refused``: assignment key -> its unjustified prefixes (``DesiredState.refused``)."""
        if refused == self._refused:
            return
        for key, refusals in refused.items():
            if self._refused.get(key) == refusals:
                continue
            a = assignment(key)
            for r in refusals:
                self._log.warning(
                    "prefix refused: not justified by its VIPPool",
                    service=key,
                    prefix=r.prefix,
                    reason=r.reason,
                    error=r.message,
                )
                if a is not None and self._events is not None:
                    ref = ObjectRef("Service", a.namespace, a.name, a.uid)
                    self._events.record(ref, "Warning", EVENT_REASON, r.message)
        for key in self._refused.keys() - refused.keys():
            self._log.info("no prefix refused any more", service=key)
        self._refused = dict(refused)
        counts = Counter(r.reason for rs in refused.values() for r in rs)
        for reason in REASONS:
            self._metrics.unjustified.labels(reason).set(counts[reason])

    def _problems(self, kind: str, now: Mapping[str, str], problem: str, solved: str) -> bool:
        """Log each new or changed problem of ``kind`` as an error, each one gone as an info;
        whether anything changed."""
        old = self._known.get(kind, {})
        if now == old:
            return False
        for name, why in now.items():
            if old.get(name) != why:
                self._log.error(problem, **{kind: name}, error=why)
        for name in old.keys() - now.keys():
            self._log.info(solved, **{kind: name})
        self._known[kind] = dict(now)
        return True
