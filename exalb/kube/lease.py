"""Leader election on a ``coordination.k8s.io/v1`` Lease.

Why not ``kubernetes.leaderelection``: exalb does not depend on that package at run
time, its LeaseLock always uses the global default client, it runs the leader's work in a
thread it cannot stop, and it gives the work no way to ask "am I still
allowed to write?" between renewals, so a leader that cannot reach the API
keeps acting until its callback notices. exalb needs the opposite guarantee:
a leader that cannot renew stops writing *before* its lease can expire, so
two writers never overlap. This module is the smallest thing that does it.

The rule: a successful renew that *started* at monotonic time ``t`` makes
this process leader until ``t + renew_deadline``. A standby may take over
only after it has watched the same record unchanged for ``lease_duration``
on its own clock (client-go's rule, immune to clock skew between nodes), so
there is always ``lease_duration - renew_deadline`` seconds of margin
between the old leader's last write and the new leader's first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import structlog

from .rest import ApiError, Timeout, resource_path

log = structlog.get_logger("lease")

Obj = dict[str, Any]
# The shortest wait between two rounds (a deadline that is due now is still not a busy loop).
MIN_WAIT = 0.05
# How many times per retry period a standby reads the Lease (one cheap GET each).
STANDBY_READS = 4


class LeaseApi(Protocol):
    """The three verbs the elector uses (``exalb.kube.rest.Client`` has them)."""

    def get(self, path: str, *, timeout: Timeout | None = None) -> Obj: ...

    def create(self, path: str, body: Obj, *, timeout: Timeout | None = None) -> Obj: ...

    def replace(self, path: str, body: Obj, *, timeout: Timeout | None = None) -> Obj: ...


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    # ownerReferences of the Lease when this process creates it (exalb.kube.owner)
    owners: tuple[Obj, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry_period < renew_deadline < lease_duration")


class Action(Enum):
    ACQUIRE = "acquire"  # take the lease (it is free, expired, or released)
    RENEW = "renew"  # we hold it: bump renewTime
    WAIT = "wait"  # someone else holds a live lease


@dataclass(frozen=True)
class Record:
    holder: str
    renew_time: str
    duration: int
    transitions: int


def decide(
    record: Record | None, identity: str, unchanged_for: float, lease_duration: float
) -> Action:
    """What a candidate should do, given the lease record and how long it has looked the same."""
    if record is None or not record.holder:
        return Action.ACQUIRE
    if record.holder == identity:
        return Action.RENEW
    if unchanged_for >= expiry(record, lease_duration):
        return Action.ACQUIRE
    return Action.WAIT


def expiry(record: Record, lease_duration: float) -> float:
    """How long a record must stay unchanged before it is taken: the longer of both durations."""
    return max(lease_duration, float(record.duration))


def micro_time(now: datetime) -> str:
    """A Lease's acquireTime/renewTime: a MicroTime, in UTC."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Runs the election in a thread; ask ``remaining()`` before every write attempt."""

    def __init__(
        self,
        api: LeaseApi,
        cfg: LeaseConfig,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._path = resource_path("coordination.k8s.io/v1", "leases", cfg.namespace, cfg.name)
        self._collection = resource_path("coordination.k8s.io/v1", "leases", cfg.namespace)
        self.cfg = cfg
        self._listeners: list[Callable[[bool], None]] = []
        self._clock = clock
        self._wall = wall
        self._valid_until = 0.0
        self._leading = False
        self._seen: Record | None = None
        self._seen_since = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._log = log.bind(lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
        self.holder: str | None = None

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(leading)`` on every change of leadership (from the lease thread)."""
        self._listeners.append(listener)

    def remaining(self) -> float:
        """Seconds this process may still write: 0 unless it leads.

        A renew that started at ``t`` and succeeded makes it ``t + renew_deadline - now``,
        so the last permitted write ends ``lease_duration - renew_deadline`` before a
        standby may take over.
        """
        if not self._leading:
            return 0.0
        return max(0.0, self._valid_until - self._clock())

    def is_leader(self) -> bool:
        return self.remaining() > 0

    def start(self) -> LeaderElector:
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.cfg.retry_period * 2 + 5)
        was_leading = self._leading
        self._set_leading(False)  # no write may start once the lease is being handed over
        if release and was_leading:
            self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.tick())

    def tick(self) -> float:
        """One round of the election; returns how long to wait before the next one.

        A standby's takeover counts from the moment it first *saw* the last renew, so
        how late it sees it adds to every failover: it reads the Lease
        ``STANDBY_READS`` times per retry period, and it wakes when the record it
        watches expires, not up to a retry period past it.
        """
        started = self._clock()
        try:
            ok = self._try(started)
        except Exception as exc:
            ok = False
            self._log.warning("lease update failed", error=str(exc)[:200])
        if ok:
            self._valid_until = started + self.cfg.renew_deadline
            self._set_leading(True)
            return self.cfg.retry_period
        if self._leading and self._clock() >= self._valid_until:
            self._log.error("could not renew the lease before the deadline; stopped leading")
            self._set_leading(False)
        if self._seen is None or not self._seen.holder or self._seen.holder == self.cfg.identity:
            return self.cfg.retry_period
        due = self._seen_since + expiry(self._seen, self.cfg.lease_duration) - self._clock()
        return max(MIN_WAIT, min(self.cfg.retry_period / STANDBY_READS, due))

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            if not leading:
                self._valid_until = 0.0
            self._log.info("leadership changed", leader=leading)
            for listener in self._listeners:
                listener(leading)

    def _timeout(self) -> float:
        return self.cfg.retry_period * 2

    def _try(self, now: float) -> bool:
        try:
            lease = self._api.get(self._path, timeout=self._timeout())
        except ApiError as exc:
            if exc.status != 404:
                raise
            return self._create()
        spec = dict(lease.get("spec") or {})
        rec = Record(
            holder=spec.get("holderIdentity") or "",
            renew_time=str(spec.get("renewTime")),
            duration=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
        )
        self.holder = rec.holder or None
        if rec != self._seen:
            self._seen, self._seen_since = rec, now
        action = decide(rec, self.cfg.identity, now - self._seen_since, self.cfg.lease_duration)
        if action is Action.WAIT:
            return False
        stamp = micro_time(self._wall())
        if action is Action.ACQUIRE:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = rec.transitions + (1 if rec.holder else 0)
            self._log.info("acquiring lease", previous_holder=rec.holder or None)
        spec["holderIdentity"] = self.cfg.identity
        spec["leaseDurationSeconds"] = int(self.cfg.lease_duration)
        spec["renewTime"] = stamp
        lease["spec"] = spec
        # The body carries resourceVersion: a concurrent writer makes this a 409.
        return self._claim(lambda: self._api.replace(self._path, lease, timeout=self._timeout()))

    def _create(self) -> bool:
        stamp = micro_time(self._wall())
        body: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.cfg.name,
                "namespace": self.cfg.namespace,
                **({"ownerReferences": list(self.cfg.owners)} if self.cfg.owners else {}),
            },
            "spec": {
                "holderIdentity": self.cfg.identity,
                "leaseDurationSeconds": int(self.cfg.lease_duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        collection = self._collection
        return self._claim(lambda: self._api.create(collection, body, timeout=self._timeout()))

    def _claim(self, write: Callable[[], object]) -> bool:
        """Send a write that makes us the holder; False when another writer got there first."""
        try:
            write()
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        self.holder = self.cfg.identity
        return True

    def _release(self) -> None:
        """Hand the lease over at once on a clean shutdown instead of letting it expire."""
        try:
            lease = self._api.get(self._path, timeout=self._timeout())
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") == self.cfg.identity:
                lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
                self._api.replace(self._path, lease, timeout=self._timeout())
                self._log.info("released lease")
        except Exception as exc:
            self._log.warning("could not release lease", error=str(exc)[:200])
