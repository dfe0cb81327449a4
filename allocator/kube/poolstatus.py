"""VIPPool status: per-family capacity/assigned/available, and Ready/Overlapping/Invalid.

Written only when it differs from what the pool already shows, so a busy
allocator does not rewrite every pool on every reconcile. The response goes
straight into the allocator's pool mirror, quietly unless it shows someone
else's change: every create changes a pool's counters, and the watch event of
that write would otherwise cost a whole extra reconcile per create.

Writes happen on a thread of their own (:class:`PoolStatusSync`), at most one
round every half second: the counters change with every create, and a
reconcile that waited for that round trip made the next create wait too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from allocator.core.plan import PoolReport
from allocator.metrics import AllocatorMetrics
from exalb.background import Loop
from exalb.kube import retry
from exalb.kube.informer import Informer
from exalb.kube.rest import Client, resource_path

from .watches import GROUP, POOLS, VERSION

log = structlog.get_logger("allocator.poolstatus")

FAMILY = {4: "IPv4", 6: "IPv6"}


def desired_status(report: PoolReport, generation: int) -> dict[str, Any]:
    st: dict[str, Any] = {"observedGeneration": generation}
    for v, name in FAMILY.items():
        cap = report.capacity.get(v, 0)
        used = report.assigned.get(v, 0)
        st[f"capacity{name}"] = cap
        st[f"assigned{name}"] = used
        st[f"available{name}"] = max(cap - used, 0)
    conds = [
        ("Ready", report.ready, report.reason, report.message or "addresses are in use by exalb"),
        (
            "Overlapping",
            report.reason == "Overlapping",
            "Overlapping" if report.reason == "Overlapping" else "NoOverlap",
            report.message if report.reason == "Overlapping" else "",
        ),
        (
            "InvalidAddresses",
            report.reason in ("InvalidAddresses", "Invalid"),
            report.reason if report.reason in ("InvalidAddresses", "Invalid") else "Valid",
            report.message if report.reason in ("InvalidAddresses", "Invalid") else "",
        ),
    ]
    st["conditions"] = [
        {
            "type": t,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": msg,
            "observedGeneration": generation,
        }
        for t, ok, reason, msg in conds
    ]
    return st


def _comparable(status: dict[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions", [])
    ]
    return out


class PoolStatusWriter:
    def __init__(
        self, api: Client, namespace: str, mirror: Informer, validity: Callable[[], float]
    ) -> None:
        self._api = api
        self._ns = namespace
        self._mirror = mirror
        self._validity = validity

    def sync(self, pool_obj: dict[str, Any], report: PoolReport) -> bool:
        """Write the pool's status if it changed; True when a write happened."""
        md = pool_obj.get("metadata", {})
        want = desired_status(report, int(md.get("generation", 0)))
        have = pool_obj.get("status") or {}
        if _comparable(have) == _comparable(want):
            return False
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        old = {c.get("type"): c for c in have.get("conditions", [])}
        for c in want["conditions"]:
            prev = old.get(c["type"])
            same = prev is not None and prev.get("status") == c["status"]
            c["lastTransitionTime"] = prev.get("lastTransitionTime", now) if same and prev else now
        path = resource_path(f"{GROUP}/{VERSION}", POOLS, self._ns, md["name"]) + "/status"
        after = retry.fenced(
            lambda t: self._api.patch(path, {"status": want}, timeout=t, retry_connection=False),
            self._validity,
        )
        # A merge patch has no precondition: if the spec changed meanwhile, that is
        # someone else's news and deserves a reconcile; our own status does not.
        theirs = after.get("spec") != pool_obj.get("spec") or after.get("metadata", {}).get(
            "generation"
        ) != md.get("generation")
        self._mirror.observe(after, notify=theirs)
        before = {c.get("type"): c.get("status") for c in have.get("conditions", [])}
        news = before != {c["type"]: c["status"] for c in want["conditions"]}
        (log.info if news else log.debug)(
            "pool status updated",
            pool=md["name"],
            ready=report.ready,
            reason=report.reason,
            assigned=report.assigned,
        )
        return True


class PoolStatusSync:
    """The one writer of pool status: converges every pool to the latest plan's report.

    ``want`` returns at once; the thread writes the newest reports handed over, skipping
    intermediate ones, and waits ``interval`` between rounds. A failed write is retried on
    the next round; a lost lease drops the round (the next leader writes its own).
    """

    def __init__(
        self,
        writer: PoolStatusWriter,
        mirror: Informer,
        may_write: Callable[[], bool],
        metrics: AllocatorMetrics,
        interval: float = 0.5,
    ) -> None:
        self._writer = writer
        self._mirror = mirror
        self._may_write = may_write  # skips the round early; each write is fenced on its own
        self._metrics = metrics
        self._interval = interval
        self._lock = threading.Lock()
        self._wanted: Mapping[str, PoolReport] | None = None
        self._loop = Loop("pool status", self._take, None, log, min_gap=interval)

    def start(self) -> PoolStatusSync:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def want(self, reports: Mapping[str, PoolReport]) -> None:
        with self._lock:
            self._wanted = reports
        self._loop.wake()

    def _take(self) -> float | None:
        """Write the newest reports handed over; only the newest matter."""
        with self._lock:
            reports, self._wanted = self._wanted, None
        if reports is None or self._round(reports):
            return None
        with self._lock:
            if self._wanted is None:
                self._wanted = reports  # try again next round
        return self._interval

    def _round(self, reports: Mapping[str, PoolReport]) -> bool:
        """One pass over the pools; False if a write failed and the round must be redone."""
        ok = True
        for obj in self._mirror.snapshot().values():
            name = obj["metadata"]["name"]
            report = reports.get(name)
            if report is None:
                continue
            if not self._may_write():
                return True  # not ours to write any more
            try:
                if self._writer.sync(obj, report):
                    self._metrics.writes.labels("VIPPool").inc()
            except retry.NotLeader:
                return True  # the lease ran out during the round
            except Exception as exc:
                ok = False
                self._metrics.write_errors.labels("VIPPool").inc()
                log.warning("pool status write failed", pool=name, error=str(exc)[:200])
        return ok
