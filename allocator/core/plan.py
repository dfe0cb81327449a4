"""The allocation plan: from everything observed, what every Service's IP should be.

Level-triggered and deterministic: the same Services, pools and namespaces
always give the same plan, so a restarted allocator recomputes exactly the
state it had. The Service status is the truth: Services that already hold an
IP are examined first, oldest first, and keep it unless it has really become
wrong (its pool no longer contains it, the user changed what they asked for,
or an older Service holds it and may not share). Only then are pending
Services given addresses, oldest first, from the lowest free address of the
first pool that fits. That ordering is what stops the MetalLB bugs where a
restart let a pending Service steal an assigned IP (#1774, #1984, #2443).
"""

from __future__ import annotations

import bisect
import functools
import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assignments import LOCAL, Advertisement, Assignment

from .addresses import AddressError, AddressRange, buggy, parse_ip, to_str
from .pool import Pool, PoolError, parse_pool
from .service import ServiceInfo
from .sharing import conflict, first_conflict


@dataclass(frozen=True)
class PoolSpec:
    """An IPPool as observed: name, raw spec, creation time."""

    name: str
    spec: Any
    created: str = ""


@dataclass(frozen=True)
class Allocated:
    ips: tuple[str, ...]
    pool: str
    previous: tuple[str, ...] = ()  # the IPs it had before, when they changed
    why_moved: str = ""  # why the previous IPs could not be kept
    frozen: bool = False  # kept in a pool that is currently invalid


@dataclass(frozen=True)
class Failed:
    reason: str  # PoolExhausted, IPInUse, IPNotInPool, InvalidAnnotation, PoolNotFound, NoPool
    message: str


Result = Allocated | Failed

_ORDER = operator.attrgetter("created", "namespace", "name")  # who came first


@dataclass
class PoolReport:
    name: str
    ready: bool
    reason: str = "Ready"  # Ready | Overlapping | InvalidAddresses | Invalid
    message: str = ""
    capacity: dict[int, int] = field(default_factory=dict)
    assigned: dict[int, int] = field(default_factory=dict)


@dataclass
class Plan:
    results: dict[str, Result] = field(default_factory=dict)  # key ns/name -> result
    release: dict[str, ServiceInfo] = field(default_factory=dict)  # not ours, carry our marks
    pools: dict[str, PoolReport] = field(default_factory=dict)
    assignments: dict[str, Assignment] = field(default_factory=dict)  # entry key -> record


# --- pools ------------------------------------------------------------------
def resolve_pools(
    specs: Iterable[PoolSpec], holders: Mapping[str, int] | None = None
) -> tuple[list[Pool], dict[str, PoolReport]]:
    """Parse every pool; the older of two overlapping pools keeps its addresses.

    Creation times have one-second resolution; on a tie the pool that Services
    already hold addresses from wins (so no allocation is lost), then the name.
    """
    held = holders or {}
    reports: dict[str, PoolReport] = {}
    usable: list[Pool] = []
    for s in sorted(specs, key=lambda p: (p.created, -held.get(p.name, 0), p.name)):
        try:
            pool = _parse_cached(s.name, json.dumps(s.spec, sort_keys=True), s.created)
        except PoolError as exc:
            reports[s.name] = PoolReport(s.name, False, exc.reason, str(exc))
            continue
        clash = next(
            ((o, a, b) for o in usable for a in pool.ranges for b in o.ranges if a.overlaps(b)),
            None,
        )
        report = PoolReport(
            s.name,
            clash is None,
            capacity={v: pool.capacity(v) for v in sorted(pool.families)},
            assigned={v: 0 for v in sorted(pool.families)},
        )
        if clash is not None:
            other, a, b = clash
            report.reason = "Overlapping"
            report.message = (
                f"addresses {a} overlap {b} of pool {other.name!r}, which is older; "
                "this pool gets no allocations until the overlap is removed"
            )
        else:
            usable.append(pool)
        reports[s.name] = report
    return usable, reports


@functools.lru_cache(maxsize=256)
def _parse_cached(name: str, spec_json: str, created: str) -> Pool:
    """Unchanged pools parse to the *same* object, so per-Service results can be reused."""
    return parse_pool(name, json.loads(spec_json), created)


class _Index:
    """Which usable pool holds an address: bisect over non-overlapping ranges."""

    def __init__(self, pools: list[Pool]) -> None:
        entries = sorted((r.version, r.start, r.end, p) for p in pools for r in p.ranges)
        self._keys = [(v, s) for v, s, _, _ in entries]
        self._entries = entries

    def pool_of(self, ip: int, version: int) -> Pool | None:
        i = bisect.bisect_right(self._keys, (version, ip)) - 1
        if i >= 0:
            v, start, end, pool = self._entries[i]
            if v == version and start <= ip <= end:
                return pool
        return None


# --- the plan ---------------------------------------------------------------
@dataclass
class PlanMemo:
    """What a caller may keep between plans so unchanged Services cost almost nothing.

    Entries are reused only for the very same ServiceInfo object (the controller keeps one
    per resourceVersion) and the very same pools, so a memo can never change a result.
    """

    verdicts: dict[str, Any] = field(default_factory=dict)
    records: dict[str, tuple[ServiceInfo, Allocated, Pool | None, Assignment]] = field(
        default_factory=dict
    )


class _Planner:
    def __init__(
        self,
        pools: list[Pool],
        reports: dict[str, PoolReport],
        namespaces: Mapping[str, Mapping[str, str]],
        previous: Mapping[str, Assignment],
        memo: PlanMemo,
    ) -> None:
        self.memo = memo
        self.signature = (tuple(pools), frozenset(n for n, r in reports.items() if not r.ready))
        self.pools = pools
        self.by_name = {p.name: p for p in pools}
        self.reports = reports
        self.namespaces = namespaces
        self.previous = previous
        self.index = _Index(pools)
        self.owners: dict[tuple[int, int], list[ServiceInfo]] = {}
        self.shared: dict[str, set[tuple[int, int]]] = {}
        self.cursor: dict[tuple[str, int], tuple[int, int]] = {}
        self.plan = Plan(pools=reports)

    # ownership bookkeeping
    def take(self, svc: ServiceInfo, addr: tuple[int, int], pool: Pool | None) -> None:
        holders = self.owners.setdefault(addr, [])
        if not holders and pool is not None:
            self.reports[pool.name].assigned[addr[0]] += 1
        holders.append(svc)
        if svc.sharing_key is not None:
            self.shared.setdefault(svc.sharing_key, set()).add(addr)

    def allowed(self, pool: Pool, svc: ServiceInfo) -> bool:
        return pool.allows(svc.namespace, self.namespaces.get(svc.namespace, {}), svc.labels)

    # phase 1: keep what is already assigned, if it is still right
    def keep(self, svc: ServiceInfo) -> str | None:
        """Record ``svc``'s current IPs and return None, or say why they cannot be kept."""
        hit = self.memo.verdicts.get(svc.key)
        if hit is not None and hit[0] is svc and hit[1] == self.signature:
            verdict = hit[2]
        else:
            verdict = self._examine(svc)
            self.memo.verdicts[svc.key] = (svc, self.signature, verdict)
        if isinstance(verdict, str):
            return verdict
        addrs, pool, result = verdict
        if not result.frozen:
            for a in addrs:
                holders = self.owners.get(a)
                if holders:
                    clash = first_conflict(svc, holders)
                    if clash:
                        other, why = clash
                        return (
                            f"{to_str(a[1], a[0])} is held by {other.key}, which is older ({why})"
                        )
        for a in addrs:
            self.take(svc, a, pool)
        self.plan.results[svc.key] = result
        return None

    def _examine(
        self, svc: ServiceInfo
    ) -> str | tuple[list[tuple[int, int]], Pool | None, Allocated]:
        """Everything about keeping ``svc``'s IPs that depends only on it and the pools.

        Memoised per Service object and pool set: in a steady state with 10,000 Services
        this is most of a plan's work, and none of it changes between passes.
        """
        try:
            addrs = [(v, ip) for ip, v in (parse_ip(x) for x in svc.current_ips)]
        except AddressError as exc:
            return f"its status holds an invalid address ({exc})"
        if (
            svc.current_pool
            and svc.current_pool in self.reports
            and not self.reports[svc.current_pool].ready
        ):
            # The pool exists but is broken right now (an operator's edit): never move
            # a working IP because of it, and make no new allocations from it.
            return addrs, None, Allocated(svc.current_ips, svc.current_pool, frozen=True)
        pools = {self.index.pool_of(ip, v) for v, ip in addrs}
        if None in pools:
            missing = [
                x
                for x, (v, ip) in zip(svc.current_ips, addrs, strict=True)
                if self.index.pool_of(ip, v) is None
            ]
            return f"{', '.join(missing)} is no longer in any pool"
        if len(pools) != 1:
            return "its addresses come from different pools"
        pool = next(iter(p for p in pools if p is not None))
        # A request the user cannot have meant (malformed annotations) never moves a
        # working IP: the error is reported, the allocation stays.
        if not svc.errors:
            if svc.requested_pool and svc.requested_pool != pool.name:
                return f"address-pool now asks for {svc.requested_pool!r}"
            if svc.requested_ips and set(svc.requested_ips) != set(svc.current_ips):
                return f"the requested IPs are now {', '.join(svc.requested_ips)}"
        versions = [v for v, _ in addrs]
        if len(set(versions)) != len(versions) or not set(versions) <= set(svc.families):
            return "its addresses do not match its IP families"
        return addrs, pool, Allocated(svc.current_ips, pool.name)

    # phase 2: allocate
    def allocate(self, svc: ServiceInfo) -> Result:
        if svc.errors:
            return Failed("InvalidAnnotation", "; ".join(svc.errors))
        if svc.requested_ips:
            return self._requested(svc)
        if svc.requested_pool:
            pool = self.by_name.get(svc.requested_pool)
            if pool is None:
                rep = self.reports.get(svc.requested_pool)
                if rep is None:
                    return Failed("PoolNotFound", f"pool {svc.requested_pool!r} does not exist")
                return Failed(
                    "PoolNotReady", f"pool {svc.requested_pool!r} is {rep.reason}: {rep.message}"
                )
            if not self.allowed(pool, svc):
                return Failed(
                    "PoolNotAllowed",
                    f"pool {pool.name!r} does not serve namespace {svc.namespace!r} "
                    "or this Service's labels (serviceAllocation)",
                )
            candidates = [pool]
        else:
            candidates = self._candidates(svc)
            if not candidates:
                return Failed(
                    "NoPool",
                    f"no IPPool with autoAssign serves namespace {svc.namespace!r} "
                    f"and IP family {_family(svc.families[0])}",
                )
        for pool in candidates:
            got = self._pick(pool, svc)
            if got is not None:
                for a in got:
                    self.take(svc, a, pool)
                return Allocated(tuple(to_str(ip, v) for v, ip in got), pool.name)
        names = ", ".join(p.name for p in candidates)
        return Failed("PoolExhausted", f"no available IPs in pool(s) {names}")

    def _candidates(self, svc: ServiceInfo) -> list[Pool]:
        fam = svc.families[0]
        pinned = sorted(
            (
                p
                for p in self.pools
                if p.auto_assign
                and p.has_service_allocation
                and fam in p.families
                and self.allowed(p, svc)
            ),
            key=lambda p: (p.priority == 0, p.priority, p.name),
        )
        general = sorted(
            (
                p
                for p in self.pools
                if p.auto_assign and not p.has_service_allocation and fam in p.families
            ),
            key=lambda p: p.name,
        )
        return pinned + general

    def _requested(self, svc: ServiceInfo) -> Result:
        got: list[tuple[int, int]] = []
        pool: Pool | None = None
        for text in svc.requested_ips:
            ip, v = parse_ip(text)
            p = self.index.pool_of(ip, v)
            if p is None:
                return Failed("IPNotInPool", f"requested IP {text} is not in any ready pool")
            if svc.requested_pool and p.name != svc.requested_pool:
                return Failed(
                    "IPNotInPool",
                    f"requested IP {text} is in pool {p.name!r}, "
                    f"not in the requested pool {svc.requested_pool!r}",
                )
            if pool is not None and p is not pool:
                return Failed("IPNotInPool", "requested IPs must come from one pool")
            if not self.allowed(p, svc):
                return Failed(
                    "PoolNotAllowed",
                    f"pool {p.name!r} of requested IP {text} does not "
                    f"serve namespace {svc.namespace!r} or this Service's labels",
                )
            clash = first_conflict(svc, self.owners.get((v, ip), []))
            if clash:
                other, why = clash
                return Failed("IPInUse", f"requested IP {text} is held by {other.key} ({why})")
            pool = p
            got.append((v, ip))
        assert pool is not None
        for a in got:
            self.take(svc, a, pool)
        return Allocated(svc.requested_ips, pool.name)

    def _pick(self, pool: Pool, svc: ServiceInfo) -> list[tuple[int, int]] | None:
        wanted = [f for f in svc.families if f in pool.families]
        if not wanted or wanted[0] != svc.families[0]:
            return None
        if svc.require_all_families and len(wanted) != len(svc.families):
            return None
        out = []
        for v in wanted:
            a = self._shareable(pool, v, svc) or self._free(pool, v)
            if a is None:
                if v == svc.families[0] or svc.require_all_families:
                    return None
                continue
            out.append(a)
        return out

    def _shareable(self, pool: Pool, v: int, svc: ServiceInfo) -> tuple[int, int] | None:
        if svc.sharing_key is None:
            return None
        for a in sorted(self.shared.get(svc.sharing_key, ())):
            if (
                a[0] == v
                and self.index.pool_of(a[1], v) is pool
                and not any(conflict(svc, o) for o in self.owners.get(a, []))
            ):
                return a
        return None

    def _free(self, pool: Pool, v: int) -> tuple[int, int] | None:
        ranges = [r for r in pool.ranges if r.version == v]
        ri, ip = self.cursor.get((pool.name, v), (0, ranges[0].start if ranges else 0))
        while ri < len(ranges):
            r: AddressRange = ranges[ri]
            ip = max(ip, r.start)
            while ip <= r.end:
                if (v, ip) not in self.owners and not (pool.avoid_buggy_ips and buggy(ip, v)):
                    self.cursor[(pool.name, v)] = (ri, ip)
                    return (v, ip)
                ip += 1
            ri += 1
        self.cursor[(pool.name, v)] = (ri, ip)
        return None


def _family(v: int) -> str:
    return "IPv4" if v == 4 else "IPv6"


def make_plan(
    services: Iterable[ServiceInfo],
    pool_specs: Iterable[PoolSpec],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    previous: Mapping[str, Assignment] | None = None,
    memo: PlanMemo | None = None,
) -> Plan:
    """Compute the whole plan. ``previous`` (the published entries) is consulted only for
    Services frozen in a currently broken pool, to keep announcing them as before."""
    services = list(services)
    ours = sorted((s for s in services if s.ours), key=_ORDER)
    holders: dict[str, int] = {}
    for s in ours:
        if s.current_pool and s.current_ips:
            holders[s.current_pool] = holders.get(s.current_pool, 0) + 1
    pools, reports = resolve_pools(pool_specs, holders)
    memo = memo if memo is not None else PlanMemo()
    planner = _Planner(pools, reports, namespaces or {}, previous or {}, memo)
    for s in services:
        if not s.ours and s.current_pool is not None:
            planner.plan.release[s.key] = s

    moved: dict[str, str] = {}
    pending: list[ServiceInfo] = []
    for s in ours:
        if not s.current_ips:
            pending.append(s)
            continue
        why = planner.keep(s)
        if why is not None:
            moved[s.key] = why
            pending.append(s)
    for s in sorted(pending, key=_ORDER):
        result = planner.allocate(s)
        if isinstance(result, Allocated) and s.current_ips:
            result = Allocated(result.ips, result.pool, s.current_ips, moved.get(s.key, ""))
        planner.plan.results[s.key] = result

    by_key = {s.key: s for s in ours}
    cache = memo.records
    for key, res in planner.plan.results.items():
        if isinstance(res, Allocated):
            svc = by_key[key]
            pool = planner.by_name.get(res.pool)
            hit = cache.get(key)
            if (
                hit is not None
                and hit[0] is svc
                and hit[2] is pool
                and (hit[1] is res or hit[1] == res)
            ):
                record = hit[3]  # same inputs, same record (and the same object: cheap to publish)
            else:
                record = assignment_for(svc, res, pool, planner.previous)
                cache[key] = (svc, res, pool, record)
            planner.plan.assignments[record.key] = record
    live = planner.plan.results
    for table in (memo.records, memo.verdicts):
        for gone in [k for k in table if k not in live]:
            del table[gone]
    return planner.plan


def assignment_for(
    svc: ServiceInfo, res: Allocated, pool: Pool | None, previous: Mapping[str, Assignment]
) -> Assignment:
    """The published record; Local traffic is always announced as /32 (/128), MetalLB #2811."""
    if pool is not None:
        advs = pool.advertisements
    else:
        prev = previous.get(f"{svc.namespace}.{svc.name}")
        advs = prev.advertisements if prev else (Advertisement(),)
    if svc.traffic_policy == LOCAL:
        advs = tuple(
            Advertisement(
                32, 128, a.communities, a.large_communities, a.local_pref, a.peers, a.node_selectors
            )
            for a in advs
        )
    return Assignment(
        namespace=svc.namespace,
        name=svc.name,
        uid=svc.uid,
        ips=res.ips,
        pool=res.pool,
        traffic_policy=svc.traffic_policy,
        advertisements=advs,
    )
