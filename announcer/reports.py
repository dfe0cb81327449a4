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
from collections.abc import Callable, Mapping
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
        self._stale: dict[str, str] = {}
        self._invalid: dict[str, str] = {}
        self._refused: dict[str, tuple[Refusal, ...]] = {}
        self._nothing_published = False
        for reason in REASONS:
            metrics.unjustified.labels(reason).set(0)

    def stale(self, shards: Mapping[str, str]) -> None:
        """``shards``: every stale shard and why (``Published.stale()``)."""
        if shards == self._stale:
            return
        for name, why in shards.items():
            if self._stale.get(name) != why:
                self._log.error(
                    "assignment ConfigMap stale; keeping its last good entries",
                    configmap=name,
                    error=why,
                )
        for name in self._stale.keys() - shards.keys():
            self._log.info("assignment ConfigMap readable again", configmap=name)
        self._stale = dict(shards)
        self._metrics.assignments_stale.set(1 if shards else 0)

    def invalid_pools(self, invalid: Mapping[str, str]) -> None:
        """``invalid``: VIPPool name -> why its spec is invalid (``PoolSpaces.update``)."""
        if invalid == self._invalid:
            return
        for name, why in invalid.items():
            if self._invalid.get(name) != why:
                self._log.error(
                    "VIPPool invalid; its last valid addresses (if any) still justify its prefixes",
                    pool=name,
                    error=why,
                )
        for name in self._invalid.keys() - invalid.keys():
            self._log.info("VIPPool valid again (or deleted)", pool=name)
        self._invalid = dict(invalid)

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
