"""The allocator's reconcile loop: observe, plan, converge; only while leading.

Level-triggered: any change to a Service, Namespace, VIPPool or the published
ConfigMaps marks the state dirty; one thread then plans from the informer
mirrors (which are the API's own word, updated with the responses of our
writes) and converges Services, pools and the ConfigMap to it. Changes that
arrive while a reconcile runs are coalesced into the next.

A pass looks only at the Services that changed since the last one (watch events
and our own writes' responses name them): with 10,000 allocated Services a create
must not wait for 10,000 Services' worth of work. The plan is updated from those
changes when that is provably the same as recomputing it
(``allocator.core.plan.make_plan``); every Service is walked, and the plan
recomputed in full, on the first pass, after errors and at least every
``resync_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from allocator.core.plan import Allocated, Failed, Plan, PlanMemo, PoolSpec, Result, make_plan
from allocator.core.service import ServiceInfo, parse_service
from allocator.kube.poolstatus import PoolStatusSync, PoolStatusWriter
from allocator.kube.publisher import Publisher
from allocator.kube.services import ServiceWrite, ServiceWriter
from allocator.kube.watches import Watches, make_watches
from allocator.metrics import AllocatorMetrics
from exalb.assignments import SCHEMA_KEY, Assignment, ContractError, decode, entry_key
from exalb.kube.events import EventRecorder, ObjectRef
from exalb.kube.rest import Client

log = structlog.get_logger("allocator")


@dataclass(frozen=True)
class Config:
    namespace: str
    lb_class: str | None = None  # --load-balancer-class
    configmap_prefix: str = "exalb-assignments"
    resync_seconds: float = 300.0
    write_workers: int = 8
    # ownerReferences of what the allocator creates (exalb.kube.owner): none by default
    owners: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Outcome:
    """What a Service was last told, so Events are recorded on change, not on every pass."""

    reason: str
    message: str
    key: str = ""  # namespace/name, to forget the outcome once the Service is gone


@dataclass
class ReconcileStats:
    services: int = 0
    writes: int = 0
    failed_writes: int = 0
    plan_seconds: float = 0.0
    total_seconds: float = 0.0
    pending: list[str] = field(default_factory=list)


class PublishedEntries(Mapping[str, Assignment]):
    """The entries currently in the ConfigMaps, decoded only when asked for (rarely)."""

    def __init__(self, shards: list[dict[str, str]]) -> None:
        self._shards = shards

    def __getitem__(self, key: str) -> Assignment:
        for data in self._shards:
            if key in data and key != SCHEMA_KEY:
                try:
                    return decode(key, data[key])
                except ContractError:
                    break
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter({k for d in self._shards for k in d if k != SCHEMA_KEY})

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Allocator:
    def __init__(
        self,
        api: Client,
        cfg: Config,
        validity: Callable[[], float],
        metrics: AllocatorMetrics,
        events: EventRecorder | None = None,
    ) -> None:
        """``validity`` is the lease's: how many seconds this process may still write."""
        self.cfg = cfg
        self._validity = validity
        self.metrics = metrics
        self._events = events
        self._dirty = threading.Event()
        self._stop = threading.Event()
        # Keys of Services changed since the last pass (watch events and our own writes'
        # responses): a pass re-reads those, not 10,000 (a full walk now and then).
        self._changed_lock = threading.Lock()
        self._changed: set[str] = set()
        self.watches: Watches = make_watches(
            api, cfg.namespace, self._dirty.set, on_service=self._service_changed
        )
        self._writer = ServiceWriter(
            api,
            self.watches.services,
            validity,
            cfg.write_workers,
            on_observed=self._service_changed,
        )
        self._publisher = Publisher(
            api,
            cfg.namespace,
            cfg.configmap_prefix,
            self.watches.configmaps,
            validity,
            on_written=self._shards_written,
            owners=cfg.owners,
        )
        self._pool_status = PoolStatusSync(
            PoolStatusWriter(api, cfg.namespace, self.watches.pools, validity),
            self.watches.pools,
            self._may_write,
            metrics,
        )
        # key -> (resourceVersion, parsed): not the object itself, which would keep every
        # replaced object alive until the next pass (10,000 of them during a start-up).
        self._parsed: dict[str, tuple[str, ServiceInfo]] = {}
        self._infos_now: dict[str, ServiceInfo] = {}  # every Service, as of the last read
        self._outcomes: dict[str, Outcome] = {}
        self._attributes_told: dict[str, Outcome] = {}  # bad BGP attribute annotations
        # (Service, result) pairs whose last diff asked for no write: the same pair again
        # asks for nothing again, so it is skipped (writes are always looked at again).
        self._quiet: dict[str, tuple[ServiceInfo, Result]] = {}
        self._loud: set[str] = set()  # keys whose last diff asked for a write
        self._look_at_all = True  # next pass: diff and publish everything, not just changes
        self._memo = PlanMemo()  # per-Service work reused while a Service is unchanged
        self._last_full = 0.0  # monotonic time of the last full plan
        self._thread = threading.Thread(target=self._run, name="reconcile", daemon=True)
        self.reconciles = 0
        self.last_reconcile_error: str | None = None

    # --- lifecycle -------------------------------------------------------
    def start(self) -> Allocator:
        self.watches.start()
        self._publisher.start()
        self._pool_status.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        self._thread.join(timeout=15)
        self.watches.stop()
        self._publisher.stop()
        self._pool_status.stop()
        self._writer.shutdown()

    def kick(self) -> None:
        """Reconcile soon (leadership gained, or a test wants a pass)."""
        self._dirty.set()

    def _may_write(self) -> bool:
        return self._validity() > 0

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.watches.all())

    def _run(self) -> None:
        while not self._stop.is_set() and not self.watches.wait_synced(1.0):
            pass
        log.info(
            "caches synced; the Service status is the starting truth",
            services=len(self.watches.services),
        )
        while not self._stop.is_set():
            self._dirty.wait(self.cfg.resync_seconds)
            if self._stop.is_set():
                return
            self._dirty.clear()
            leading = self._may_write()
            self.metrics.leader.set(1 if leading else 0)
            if not leading:
                self._outcomes.clear()
                self._attributes_told.clear()
                self._quiet.clear()
                self._look_at_all = True
                continue
            try:
                self.reconcile_once()
                self.last_reconcile_error = None
            except Exception as exc:  # never let one bad pass kill the loop
                self.last_reconcile_error = repr(exc)[:300]
                log.exception("reconcile failed; retrying")
                self._quiet.clear()
                self._look_at_all = True
                self._memo.forget()
                self._stop.wait(0.5)
                self._dirty.set()

    # --- one pass --------------------------------------------------------
    def _service_changed(self, key: str) -> None:
        with self._changed_lock:
            self._changed.add(key)

    def _read_services(
        self, everything: bool
    ) -> tuple[dict[str, ServiceInfo], dict[str, ServiceInfo | None] | None]:
        """Every Service's ServiceInfo, and those that may have changed since the last pass
        (None: all of them were walked).

        Every change to the Service mirror is either a watch event (or relist) that calls
        back with its key, or the response of one of our writes, which reports its key too;
        so re-reading those keys gives what a full walk gives. The walk still runs on the
        first pass, after errors and leadership changes, and with every full plan.
        """
        with self._changed_lock:
            changed, self._changed = self._changed, set()
        if everything:
            self._infos_now = self._infos()
            return self._infos_now, None
        out, mirror = self._infos_now, self.watches.services
        changes: dict[str, ServiceInfo | None] = {}
        for key in changed:
            obj = mirror.get(key)
            if obj is None:
                out.pop(key, None)
                self._parsed.pop(key, None)
                changes[key] = None
            else:
                out[key] = changes[key] = self._parse(key, obj)
        return out, changes

    def _parse(self, key: str, obj: dict[str, Any]) -> ServiceInfo:
        rv = obj.get("metadata", {}).get("resourceVersion", "")
        hit = self._parsed.get(key)
        if hit is None or hit[0] != rv:
            hit = (rv, parse_service(obj, self.cfg.lb_class))
            self._parsed[key] = hit
        return hit[1]

    def _version(self, key: str) -> str:
        """The resourceVersion of the object this pass parsed for ``key``: writes depend on it."""
        return self._parsed[key][0]

    def _infos(self) -> dict[str, ServiceInfo]:
        """One ServiceInfo per Service, the same object while its resourceVersion is."""
        objs = self.watches.services.snapshot()
        out = {key: self._parse(key, obj) for key, obj in objs.items()}
        if len(self._parsed) != len(out):
            for gone in [k for k in self._parsed if k not in out]:
                del self._parsed[gone]
        return out

    def reconcile_once(self) -> ReconcileStats:
        t0 = time.perf_counter()
        stats = ReconcileStats()
        full = time.monotonic() - self._last_full >= self.cfg.resync_seconds
        infos, changes = self._read_services(full or self._look_at_all)
        read = self._lap(t0, "read")
        plan = self._plan(infos, changes, full)
        lap = self._lap(read, "plan")
        stats.plan_seconds = lap - read

        # An incremental plan says which Services it may have changed; the others are the
        # same objects with the same results, and were looked at (and written) before.
        everything = self._look_at_all or plan.touched is None
        self._look_at_all = False
        writes, notes = self._diff(plan, infos, everything)
        lap = self._lap(lap, "diff")
        failed = self._write_statuses(writes)
        stats.writes, stats.failed_writes = len(writes), len(failed)
        lap = self._lap(lap, "write")
        self._publish(plan, infos, failed, everything)
        lap = self._lap(lap, "publish")

        for key, (type_, reason, message) in notes:
            self._event(infos[key], type_, reason, message)
        self._pool_status.want(plan.pools)
        self._observe(plan, infos, stats)
        self._lap(lap, "finish")
        stats.services = len(infos)
        stats.total_seconds = time.perf_counter() - t0
        self.metrics.reconcile_seconds.observe(stats.total_seconds)
        self.reconciles += 1
        return stats

    def _plan(
        self,
        infos: Mapping[str, ServiceInfo],
        changes: Mapping[str, ServiceInfo | None] | None,
        full: bool,
    ) -> Plan:
        """The plan from the caches: pools, namespaces' labels and the published shards."""
        specs = [
            PoolSpec(
                o["metadata"]["name"], o.get("spec"), o["metadata"].get("creationTimestamp", "")
            )
            for o in self.watches.pools.snapshot().values()
        ]
        ns_labels = {
            o["metadata"]["name"]: o["metadata"].get("labels") or {}
            for o in self.watches.namespaces.snapshot().values()
        }
        shards = [o.get("data") or {} for o in self.watches.configmaps.snapshot().values()]
        t0 = time.perf_counter()
        plan = make_plan(
            infos.values(),
            specs,
            ns_labels,
            PublishedEntries(shards),
            self._memo,
            full=full,
            changes=changes,
        )
        if not plan.incremental:
            self._last_full = time.monotonic()
        self.metrics.plan_seconds.observe(time.perf_counter() - t0)
        self.metrics.plans.labels("incremental" if plan.incremental else "full").inc()
        return plan

    def _write_statuses(self, writes: list[ServiceWrite]) -> set[str]:
        """Write the Services' status; the keys whose write failed (retried next pass)."""
        results = self._writer.apply(writes) if writes else {}
        failed = {f"{ns}/{n}" for (ns, n), err in results.items() if err}
        if len(results) > len(failed):
            self.metrics.writes.labels("Service").inc(len(results) - len(failed))
        if failed:
            self.metrics.write_errors.labels("Service").inc(len(failed))
            self._dirty.set()  # try again on the next pass
            self._look_at_all = True  # and publish what is held back now
        return failed

    def _publish(
        self, plan: Plan, infos: Mapping[str, ServiceInfo], failed: set[str], everything: bool
    ) -> None:
        """Publish only what the Services' status now says (or already said)."""
        published: Mapping[str, Assignment] = plan.assignments
        if failed:
            published = {
                entry_key: a
                for entry_key, a in plan.assignments.items()
                if f"{a.namespace}/{a.name}" not in failed
                or infos[f"{a.namespace}/{a.name}"].current_ips == a.ips
            }
        touched = None
        if not everything and not failed and plan.touched is not None:
            touched = [entry_key(*k.split("/", 1)) for k in plan.touched]
        self._publisher.publish(published, touched)

    def _lap(self, since: float, phase: str) -> float:
        now = time.perf_counter()
        self.metrics.phase_seconds.labels(phase).observe(now - since)
        return now

    def _diff(
        self, plan: Plan, infos: dict[str, ServiceInfo], everything: bool = True
    ) -> tuple[list[ServiceWrite], list[tuple[str, tuple[str, str, str]]]]:
        writes: list[ServiceWrite] = []
        notes: dict[str, tuple[str, str, str]] = {}
        attribute_notes: dict[str, tuple[str, str, str]] = {}
        quiet, loud, results = self._quiet, self._loud, plan.results
        if everything or plan.touched is None:
            keys: Iterable[str] = results
            loud.clear()
        else:
            keys = plan.touched | loud
        for key in keys:
            res = results.get(key)
            if res is None:
                loud.discard(key)
                continue
            svc = infos[key]
            hit = quiet.get(key)
            if hit is not None and hit[0] is svc and hit[1] is res:
                continue  # asked for no write last pass, and nothing about it changed
            asked = len(writes)
            self._diff_one(key, svc, res, writes, notes)
            self._attribute_note(svc, res, attribute_notes)
            if len(writes) == asked:
                quiet[key] = (svc, res)
                loud.discard(key)
            else:
                quiet.pop(key, None)
                loud.add(key)
        if len(quiet) > len(results):
            for gone in [k for k in quiet if k not in results]:
                del quiet[gone]
        for key, svc in plan.release.items():
            clear = () if svc.current_ips and svc.ours is False else None
            writes.append(ServiceWrite(svc.namespace, svc.name, clear, None, self._version(key)))
            notes[key] = (
                "Normal",
                "IPReleased",
                f"no longer an exalb LoadBalancer; released {', '.join(svc.current_ips)}",
            )
        # Only report what changed since the last pass.
        changed = {}
        for key, (type_, reason, message) in notes.items():
            uid = infos[key].uid
            last = self._outcomes.get(uid)
            if last is None or (last.reason, last.message) != (reason, message):
                self._outcomes[uid] = Outcome(reason, message, key)
                if reason == "AllocationFailed":
                    res = plan.results[key]
                    assert isinstance(res, Failed)
                    self.metrics.failures.labels(res.reason).inc()
                changed[key] = (type_, reason, message)
        for told in (self._outcomes, self._attributes_told):
            for uid, outcome in list(told.items()):
                now = infos.get(outcome.key)
                if now is None or now.uid != uid:
                    del told[uid]
        return writes, [*changed.items(), *attribute_notes.items()]

    def _attribute_note(
        self, svc: ServiceInfo, res: Result, notes: dict[str, tuple[str, str, str]]
    ) -> None:
        """Bad BGP attribute annotations get their own Event, on the first pass that sees them.

        They never hold an address back, so they are not the allocation's story: told in
        its place, they would wait for a later pass that a quiet cluster never runs.
        """
        if not isinstance(res, Allocated) or not svc.attribute_errors:
            self._attributes_told.pop(svc.uid, None)
            return
        message = (
            f"{'; '.join(svc.attribute_errors)}; announcing {', '.join(res.ips)} without those"
        )
        told = self._attributes_told.get(svc.uid)
        if told is None or told.message != message:
            self._attributes_told[svc.uid] = Outcome("InvalidBGPAttributes", message, svc.key)
            notes[svc.key] = ("Warning", "InvalidBGPAttributes", message)

    def _diff_one(
        self,
        key: str,
        svc: ServiceInfo,
        res: Result,
        writes: list[ServiceWrite],
        notes: dict[str, tuple[str, str, str]],
    ) -> None:
        if isinstance(res, Allocated):
            ingress = res.ips if svc.current_ips != res.ips else None
            # The label travels with the pool annotation: an assigned Service unlabelled
            # (an older allocator's, or a user's edit) is written again.
            unmarked = svc.current_pool != res.pool or not svc.labelled
            pool: str | bool | None = res.pool if unmarked else False
            if ingress is not None or pool is not False:
                writes.append(
                    ServiceWrite(svc.namespace, svc.name, ingress, pool, self._version(key))
                )
            if ingress is not None and res.previous:
                notes[key] = (
                    "Warning",
                    "IPReallocated",
                    f"IP changed from {', '.join(res.previous)} to {', '.join(res.ips)}"
                    f" (pool {res.pool}): {res.why_moved}",
                )
                self.metrics.allocations.labels(res.pool).inc()
            elif ingress is not None:
                notes[key] = (
                    "Normal",
                    "IPAllocated",
                    f"Assigned IP {', '.join(res.ips)} from pool {res.pool}",
                )
                self.metrics.allocations.labels(res.pool).inc()
            elif svc.errors:
                notes[key] = (
                    "Warning",
                    "InvalidAnnotation",
                    f"{'; '.join(svc.errors)}; keeping {', '.join(res.ips)}",
                )
            elif res.frozen:
                notes[key] = (
                    "Warning",
                    "PoolNotReady",
                    f"pool {res.pool} is not ready; keeping {', '.join(res.ips)} "
                    "and announcing it as before",
                )
            else:
                self._outcomes.pop(svc.uid, None)  # steady state: nothing to tell
        elif isinstance(res, Failed):
            msg = f"Failed to allocate IP for {key}: {res.message}"
            if svc.current_ips:
                writes.append(ServiceWrite(svc.namespace, svc.name, (), None, self._version(key)))
                msg += f" (released {', '.join(svc.current_ips)})"
            notes[key] = ("Warning", "AllocationFailed", msg)

    def _event(self, svc: ServiceInfo, type_: str, reason: str, message: str) -> None:
        bound = log.bind(service=svc.key)
        (bound.warning if type_ == "Warning" else bound.info)(message, reason=reason)
        if self._events is not None:
            self._events.record(
                ObjectRef("Service", svc.namespace, svc.name, svc.uid), type_, reason, message
            )

    def _observe(self, plan: Plan, infos: dict[str, ServiceInfo], stats: ReconcileStats) -> None:
        m = self.metrics
        for name, rep in plan.pools.items():
            m.pool_ready.labels(name).set(1 if rep.ready else 0)
            for v in (4, 6):
                fam = f"IPv{v}"
                m.pool_capacity.labels(name, fam).set(rep.capacity.get(v, 0))
                m.pool_in_use.labels(name, fam).set(rep.assigned.get(v, 0))
        # Only phase 2 can fail; everything else in the plan kept its IPs.
        pending = [k for k in plan.allocating if isinstance(plan.results[k], Failed)]
        allocated = len(plan.results) - len(pending)
        m.services.labels("allocated").set(allocated)
        m.services.labels("pending").set(len(pending))
        stats.pending = pending

    def _shards_written(self, shards: int, sizes: list[int], written: int, size: int) -> None:
        self.metrics.writes.labels("ConfigMap").inc(written)
        self.metrics.assignments_written_bytes.inc(size)
        self.metrics.assignments_shards.set(shards)
        self.metrics.largest_shard_bytes.set(max(sizes) if sizes else 0)
