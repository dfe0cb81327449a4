"""Leader election on a ``coordination.k8s.io/v1`` Lease.

Why not ``kubernetes.leaderelection``: its LeaseLock always uses the global
default client (no ApiClient can be passed), it runs the leader's work in a
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

import structlog
from kubernetes import client

log = structlog.get_logger("lease")


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

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
    if unchanged_for >= max(lease_duration, float(record.duration)):
        return Action.ACQUIRE
    return Action.WAIT


class LeaderElector:
    """Runs the election in a thread; ``is_leader()`` is safe to call before every write."""

    def __init__(
        self,
        api: client.ApiClient,
        cfg: LeaseConfig,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = client.CoordinationV1Api(api)
        self.cfg = cfg
        self._on_change = on_change
        self._clock = clock
        self._valid_until = 0.0
        self._leading = False
        self._seen: Record | None = None
        self._seen_since = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._log = log.bind(lease=f"{cfg.namespace}/{cfg.name}", identity=cfg.identity)
        self.holder: str | None = None

    def is_leader(self) -> bool:
        return self._leading and self._clock() < self._valid_until

    def start(self) -> LeaderElector:
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        self._thread.join(timeout=self.cfg.retry_period + 5)
        was_leading = self._leading
        self._set_leading(False)  # no write may start once the lease is being handed over
        if release and was_leading:
            self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                ok = self._try()
            except Exception as exc:
                ok = False
                self._log.warning("lease update failed", error=str(exc)[:200])
            if ok:
                self._valid_until = started + self.cfg.renew_deadline
                self._set_leading(True)
            elif self._leading and self._clock() >= self._valid_until:
                self._log.error("could not renew the lease before the deadline; stopped leading")
                self._set_leading(False)
            self._stop.wait(self.cfg.retry_period)
        # loop exits on stop(); is_leader() turns false via stop()

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            self._leading = leading
            if not leading:
                self._valid_until = 0.0
            self._log.info("leadership changed", leader=leading)
            if self._on_change:
                self._on_change(leading)

    def _try(self) -> bool:
        now = self._clock()
        try:
            lease = self._api.read_namespaced_lease(
                self.cfg.name, self.cfg.namespace, _request_timeout=self.cfg.retry_period * 2
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return self._create()
        spec = lease.spec or client.V1LeaseSpec()
        rec = Record(
            holder=spec.holder_identity or "",
            renew_time=str(spec.renew_time),
            duration=int(spec.lease_duration_seconds or 0),
            transitions=int(spec.lease_transitions or 0),
        )
        self.holder = rec.holder or None
        if rec != self._seen:
            self._seen, self._seen_since = rec, now
        action = decide(rec, self.cfg.identity, now - self._seen_since, self.cfg.lease_duration)
        if action is Action.WAIT:
            return False
        stamp = datetime.now(UTC)
        if action is Action.ACQUIRE:
            spec.acquire_time = stamp
            spec.lease_transitions = rec.transitions + (1 if rec.holder else 0)
            self._log.info("acquiring lease", previous_holder=rec.holder or None)
        spec.holder_identity = self.cfg.identity
        spec.lease_duration_seconds = int(self.cfg.lease_duration)
        spec.renew_time = stamp
        lease.spec = spec
        try:  # replace carries resourceVersion: a concurrent writer makes this a 409
            self._api.replace_namespaced_lease(
                self.cfg.name, self.cfg.namespace, lease, _request_timeout=self.cfg.retry_period * 2
            )
        except client.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        self.holder = self.cfg.identity
        return True

    def _create(self) -> bool:
        stamp = datetime.now(UTC)
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.cfg.name, namespace=self.cfg.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.cfg.identity,
                lease_duration_seconds=int(self.cfg.lease_duration),
                acquire_time=stamp,
                renew_time=stamp,
                lease_transitions=0,
            ),
        )
        try:
            self._api.create_namespaced_lease(self.cfg.namespace, body)
        except client.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        self.holder = self.cfg.identity
        return True

    def _release(self) -> None:
        """Hand the lease over at once on a clean shutdown instead of letting it expire."""
        try:
            lease = self._api.read_namespaced_lease(self.cfg.name, self.cfg.namespace)
            if lease.spec and lease.spec.holder_identity == self.cfg.identity:
                lease.spec.holder_identity = ""
                lease.spec.lease_duration_seconds = 1
                self._api.replace_namespaced_lease(self.cfg.name, self.cfg.namespace, lease)
                self._log.info("released lease")
        except Exception as exc:
            self._log.warning("could not release lease", error=str(exc)[:200])
