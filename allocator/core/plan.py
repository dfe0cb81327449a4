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
import itertools
import json
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from exalb.assignments import LOCAL, Advertisement, Assignment, DataPathTarget, entry_key
from exalb.assignments.addresses import AddressError, AddressRange, parse_ip, to_str

from .addresses import buggy
from .pool import Pool, PoolError, parse_pool
from .service import ServiceInfo
from .sharing import conflict, first_conflict


@dataclass(frozen=True)
class PoolSpec:
    """A VIPPool as observed: name, raw spec, creation time."""

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
V = TypeVar("V")

_ORDER = operator.attrgetter("created", "namespace", "name")  # who came first


@dataclass
class PoolReport:
    name: str
    ready: bool
    reason: str = "Ready"  # Ready | Overlapping | InvalidAddresses | Invalid
    message: str = ""
    capacity: dict[int, int] = field(default_factory=dict)
    assigned: dict[int, int] = field(default_factory=dict)


class Layers(Mapping[str, V]):
    """Phase 1's entries and phase 2's, which never share a key, read as one mapping.

    Phase 1's are the memo's own, not a copy: copying 10,000 of them per plan is the
    per-pass walk that plans from changes avoid. So a plan's mappings are valid until the
    next plan made with the same memo.
    """

    def __init__(self, kept: Mapping[str, V]) -> None:
        self.kept = kept
        self.added: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        hit = self.added.get(key)
        return self.kept[key] if hit is None else hit

    def __iter__(self) -> Iterator[str]:
        return itertools.chain(self.kept, self.added)

    def __len__(self) -> int:
        return len(self.kept) + len(self.added)


@dataclass
class Plan:
    """What every Service should have. ``results`` and ``assignments`` are valid until the
    next plan made with the same memo (see :class:`Layers`)."""

    results: Layers[Result]  # key ns/name -> result
    assignments: Layers[Assignment]  # entry key -> record
    release: dict[str, ServiceInfo] = field(default_factory=dict)  # not ours, carry our marks
    pools: dict[str, PoolReport] = field(default_factory=dict)
    incremental: bool = False  # phase 1 was updated from the previous plan, not recomputed
    # Keys whose result or record may differ from the previous plan made with the same memo
    # (None: any of them may). Lets a caller look at a handful of Services, not 10,000.
    touched: set[str] | None = None
    allocating: list[str] = field(default_factory=list)  # keys given a result in phase 2


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
Addr = tuple[int, int]  # (IP version, address as an integer)


@dataclass
class PlanMemo:
    """What a caller may keep between plans so unchanged Services cost almost nothing.

    Entries are reused only for the very same ServiceInfo object (the controller keeps one
    per resourceVersion) and the very same pools, so a memo can never change a result.
    ``held`` is the previous plan's phase 1 (who keeps which address); :func:`make_plan`
    updates it in place when that is provably equal to recomputing it (see there).
    """

    verdicts: dict[str, Any] = field(default_factory=dict)
    records: dict[str, tuple[ServiceInfo, Allocated, Pool | None, Assignment]] = field(
        default_factory=dict
    )
    held: _Held | None = None
    roster: Roster | None = None  # every Service of the previous plan, by what it does
    allocated: set[str] = field(default_factory=set)  # keys phase 2 gave a result last time

    def forget(self) -> None:
        """Make the next plan walk every Service and recompute phase 1 (the safety net)."""
        self.held = None
        self.roster = None


@dataclass
class Roster:
    """Every Service, by what the plan does with it; kept between plans and updated by key,
    so a plan given the changes never walks the Services that did not change."""

    holding: dict[str, ServiceInfo] = field(default_factory=dict)  # ours, with IPs in status
    waiting: dict[str, ServiceInfo] = field(default_factory=dict)  # ours, without
    releasing: dict[str, ServiceInfo] = field(default_factory=dict)  # not ours, with our marks
    in_use: dict[str, int] = field(default_factory=dict)  # pool -> holders naming it

    @classmethod
    def of(cls, services: Iterable[ServiceInfo]) -> Roster:
        roster = cls()
        for s in services:
            roster.put(s.key, s)
        return roster

    def put(self, key: str, svc: ServiceInfo | None) -> None:
        """``svc`` is now the Service under ``key`` (None: it was deleted)."""
        old = self.holding.pop(key, None)
        if old is not None and old.current_pool:
            self.in_use[old.current_pool] -= 1
        self.waiting.pop(key, None)
        self.releasing.pop(key, None)
        if svc is None:
            return
        if not svc.ours:
            if svc.current_pool is not None:
                self.releasing[key] = svc
        elif svc.current_ips:
            self.holding[key] = svc
            if svc.current_pool:
                self.in_use[svc.current_pool] = self.in_use.get(svc.current_pool, 0) + 1
        else:
            self.waiting[key] = svc


@dataclass
class _Held:
    """Phase 1's outcome, carried from one plan to the next.

    ``claims`` counts, for every address listed in some holder's status, how many
    holders list it. An address listed by one holder only is uncontested: whatever that
    holder does with it, no other holder's outcome depends on it. That is the whole
    argument for updating this state in place instead of recomputing it.
    """

    signature: tuple[Any, ...]
    holders: dict[str, ServiceInfo] = field(default_factory=dict)  # key -> object examined
    claimed: dict[str, tuple[Addr, ...]] = field(default_factory=dict)  # key -> its addresses
    claims: dict[Addr, int] = field(default_factory=dict)  # address -> holders listing it
    owners: dict[Addr, list[ServiceInfo]] = field(default_factory=dict)
    shared: dict[str, set[Addr]] = field(default_factory=dict)  # sharing key -> addresses
    assigned: dict[str, dict[int, int]] = field(default_factory=dict)  # pool -> family -> n
    kept: dict[str, Allocated] = field(default_factory=dict)
    took: dict[str, tuple[tuple[Addr, ...], Pool | None]] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)  # key -> why its IPs cannot be kept
    records: dict[str, Assignment] = field(default_factory=dict)  # entry key -> kept record
    # (pool, family) -> an address below which every address of the pool is held
    free_from: dict[tuple[str, int], int] = field(default_factory=dict)


def _addresses(svc: ServiceInfo) -> tuple[Addr, ...]:
    try:
        return tuple((v, ip) for ip, v in (parse_ip(x) for x in svc.current_ips))
    except AddressError:
        return ()  # such a holder never keeps anything (see _examine), so it claims nothing


class _Planner:
    def __init__(
        self,
        pools: list[Pool],
        reports: dict[str, PoolReport],
        namespaces: Mapping[str, Mapping[str, str]],
        previous: Mapping[str, Assignment],
        memo: PlanMemo,
        signature: tuple[Any, ...],
    ) -> None:
        self.memo = memo
        self.signature = signature
        self.pools = pools
        self.by_name = {p.name: p for p in pools}
        self.reports = reports
        self.namespaces = namespaces
        self.previous = previous
        self.index = _Index(pools)
        self.cursor: dict[tuple[str, int], tuple[int, int]] = {}
        self.use(_Held(signature))
        # Phase 2's takes, undone afterwards: phase 1's state is reused by the next plan.
        self.undo: list[tuple[ServiceInfo, Addr, bool]] | None = None

    def use(self, held: _Held) -> None:
        self.held = held
        self.owners = held.owners
        self.shared = held.shared
        self.counts = held.assigned  # where take() counts newly held addresses

    # ownership bookkeeping
    def take(self, svc: ServiceInfo, addr: Addr, pool: Pool | None) -> None:
        holders = self.owners.get(addr)
        if holders is None:
            holders = self.owners[addr] = []
            if pool is not None:
                per_family = self.counts.setdefault(pool.name, {})
                per_family[addr[0]] = per_family.get(addr[0], 0) + 1
        holders.append(svc)
        added = False
        if svc.sharing_key is not None:
            keyed = self.shared.setdefault(svc.sharing_key, set())
            if addr not in keyed:
                keyed.add(addr)
                added = True
        if self.undo is not None:
            self.undo.append((svc, addr, added))

    def rollback(self) -> None:
        """Forget phase 2's takes, leaving phase 1's state as the next plan expects it."""
        for svc, addr, added in reversed(self.undo or []):
            holders = self.owners[addr]
            holders.pop()
            if not holders:
                del self.owners[addr]
                self._lower(addr)
            if added and svc.sharing_key is not None:
                keyed = self.shared[svc.sharing_key]
                keyed.discard(addr)
                if not keyed:
                    del self.shared[svc.sharing_key]
        self.undo = None

    def allowed(self, pool: Pool, svc: ServiceInfo) -> bool:
        return pool.allows(svc.namespace, self.namespaces.get(svc.namespace, {}), svc.labels)

    def record(self, svc: ServiceInfo, res: Allocated, pool: Pool | None) -> Assignment:
        """The published record, the same object as long as its inputs are the same."""
        cache = self.memo.records
        hit = cache.get(svc.key)
        if (
            hit is not None
            and hit[0] is svc
            and hit[2] is pool
            and (hit[1] is res or hit[1] == res)
        ):
            return hit[3]
        record = assignment_for(svc, res, pool, self.previous)
        cache[svc.key] = (svc, res, pool, record)
        return record

    # phase 1: keep what is already assigned, if it is still right
    def hold(self, svc: ServiceInfo) -> None:
        """Examine one Service that holds IPs, in its turn (oldest first)."""
        held = self.held
        addrs = _addresses(svc)
        held.holders[svc.key] = svc
        held.claimed[svc.key] = addrs
        for a in addrs:
            held.claims[a] = held.claims.get(a, 0) + 1
        why = self.keep(svc)
        if why is not None:
            held.moved[svc.key] = why

    def admit(self, svc: ServiceInfo) -> bool:
        """Add a new or changed holder out of turn; False if that could differ from in turn.

        Its addresses are listed by no other holder, so no older holder can clash with it
        (nobody else took them) and no younger one can either: in turn or out of turn, it
        finds the same free addresses and leaves everybody else as they were.
        """
        addrs = _addresses(svc)
        claims = self.held.claims
        if len(set(addrs)) != len(addrs) or any(a in claims for a in addrs):
            return False
        self.hold(svc)
        return True

    def release(self, key: str) -> bool:
        """Remove a holder that changed or left; False if others may depend on it."""
        held = self.held
        addrs = held.claimed[key]
        if any(held.claims[a] > 1 for a in addrs):
            return False  # contested: someone else's outcome may follow from this one's
        svc = held.holders.pop(key)
        del held.claimed[key]
        for a in addrs:
            del held.claims[a]
        took = held.took.pop(key, None)
        if took is not None:
            taken, pool = took
            for a in taken:
                del self.owners[a]  # listed by this holder alone, so held by it alone
                self._lower(a)
                if svc.sharing_key is not None:
                    keyed = self.shared[svc.sharing_key]
                    keyed.discard(a)
                    if not keyed:
                        del self.shared[svc.sharing_key]
                if pool is not None:
                    self.counts[pool.name][a[0]] -= 1
            del held.kept[key]
            del held.records[entry_key(svc.namespace, svc.name)]
        held.moved.pop(key, None)
        return True

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
        held = self.held
        held.kept[svc.key] = result
        held.took[svc.key] = (tuple(addrs), pool)
        record = self.record(svc, result, pool)
        held.records[record.key] = record
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
            mismatch = family_mismatch(pool, svc)
            if mismatch is not None:
                return Failed("PoolFamilyMismatch", mismatch)
            candidates = [pool]
        else:
            candidates = self._candidates(svc)
            if not candidates:
                return Failed(
                    "NoPool",
                    f"no VIPPool with autoAssign serves namespace {svc.namespace!r} "
                    f"and IP family {_family(svc.families[0])}",
                )
        mismatches = [m for m in (family_mismatch(p, svc) for p in candidates) if m is not None]
        if mismatches and len(mismatches) == len(candidates):
            return Failed("PoolFamilyMismatch", "; ".join(mismatches))
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
        key = (pool.name, v)
        ranges = [r for r in pool.ranges if r.version == v]
        at = self.cursor.get(key)
        if at is None:
            # Start where the last plan found the first free address (everything below
            # it is still held, see _lower) instead of walking 10,000 held ones again.
            hint = self.held.free_from.get(key)
            ri, ip = 0, ranges[0].start if ranges else 0
            if hint is not None:
                while ri < len(ranges) and ranges[ri].end < hint:
                    ri += 1
                ip = max(ip, hint)
        else:
            ri, ip = at
        found: Addr | None = None
        while ri < len(ranges) and found is None:
            r: AddressRange = ranges[ri]
            ip = max(ip, r.start)
            while ip <= r.end:
                if (v, ip) not in self.owners and not (pool.avoid_buggy_ips and buggy(ip, v)):
                    found = (v, ip)
                    break
                ip += 1
            else:
                ri += 1
        self.cursor[key] = (ri, ip)
        self.held.free_from[key] = ip
        return found

    def _lower(self, addr: Addr) -> None:
        """``addr`` is no longer held: scans for a free address must look at it again."""
        v, ip = addr
        hints = self.held.free_from
        for key, hint in hints.items():
            if key[1] == v and ip < hint:
                hints[key] = ip


def _family(v: int) -> str:
    return "IPv4" if v == 4 else "IPv6"


def family_mismatch(pool: Pool, svc: ServiceInfo) -> str | None:
    """Why ``pool`` can never give ``svc`` an address of the families it needs, or None.

    Needed: the primary family, and with RequireDualStack every family. Without this,
    such a request failed as if the pool were merely full.
    """
    needed = svc.families if svc.require_all_families else svc.families[:1]
    missing = [v for v in needed if v not in pool.families]
    if not missing:
        return None
    policy = " (RequireDualStack)" if svc.require_all_families else ""
    return (
        f"pool {pool.name!r} has no {' or '.join(map(_family, missing))} addresses; "
        f"the Service's ipFamilies are [{', '.join(map(_family, svc.families))}]{policy}"
    )


def make_plan(
    services: Iterable[ServiceInfo],
    pool_specs: Iterable[PoolSpec],
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    previous: Mapping[str, Assignment] | None = None,
    memo: PlanMemo | None = None,
    full: bool = False,
    changes: Mapping[str, ServiceInfo | None] | None = None,
) -> Plan:
    """Compute the whole plan. ``previous`` (the published entries) is consulted only for
    Services frozen in a currently broken pool, to keep announcing them as before.

    ``changes`` names every Service that may differ from the previous plan made with this
    ``memo`` (None: deleted). Given it, ``services`` is never walked: the memo's roster of
    every Service is updated by key. Without it (or without a previous plan), every Service
    is walked once.

    With a ``memo`` from the previous plan, phase 1 is not recomputed but updated: holders
    that changed or left are released and new ones admitted out of turn, which gives the
    very state a full pass would, as long as none of their addresses is listed by another
    holder (see :meth:`_Planner.admit`) and the pools are the same objects. Anything else
    (a pool edit, a contested address, many changes at once, ``full=True``) recomputes it
    all; the property tests check both ways agree after any sequence of changes. Phase 2
    (pending Services) is always recomputed: it is usually a handful of Services.
    """
    memo = memo if memo is not None else PlanMemo()
    # Neither is reusable if this plan fails half-way.
    held, memo.held = memo.held, None
    roster, memo.roster = memo.roster, None
    known = held.holders if held is not None else {}
    roster, changed, gone = _roster(roster, services, changes, known)
    # Pools in use only break ties between pools created in the same second.
    pools, reports = resolve_pools(list(pool_specs), roster.in_use)
    signature = (tuple(pools), frozenset(n for n, r in reports.items() if not r.ready))
    planner = _Planner(pools, reports, namespaces or {}, previous or {}, memo, signature)

    # phase 1: who holds what; updated in place when it can be, recomputed otherwise
    incremental = (
        not full
        and held is not None
        and held.signature == signature
        and len(gone) + len(changed) <= max(64, len(known) // 2)
        and _update(planner, held, gone, changed)
    )
    if not incremental:
        planner.use(_Held(signature))
        for s in sorted(roster.holding.values(), key=_ORDER):
            planner.hold(s)
    held = planner.held

    plan = _allocate(planner, held, roster, reports, incremental)
    if incremental:
        plan.touched = {*gone, *(s.key for s in changed), *memo.allocated, *plan.allocating}
    _forget(memo, plan.results, gone, incremental)
    memo.allocated = set(plan.allocating)
    memo.held = held
    memo.roster = roster
    return plan


def _roster(
    roster: Roster | None,
    services: Iterable[ServiceInfo],
    changes: Mapping[str, ServiceInfo | None] | None,
    known: Mapping[str, ServiceInfo],
) -> tuple[Roster, list[ServiceInfo], list[str]]:
    """Every Service, and of the holders the changed ones and the keys gone since ``known``.

    With ``changes`` and the previous roster, only the changed keys are looked at.
    """
    if roster is None or changes is None:
        roster = Roster.of(services)
        holding = roster.holding
        changed = [s for k, s in holding.items() if known.get(k) is not s]
        gone = [k for k, s in known.items() if holding.get(k) is not s]
        return roster, changed, gone
    for key, svc in changes.items():
        roster.put(key, svc)
    holding = roster.holding
    changed = [s for k in changes if (s := holding.get(k)) is not None and known.get(k) is not s]
    gone = [k for k in changes if k in known and holding.get(k) is not known[k]]
    return roster, changed, gone


def _allocate(
    planner: _Planner,
    held: _Held,
    roster: Roster,
    reports: dict[str, PoolReport],
    incremental: bool,
) -> Plan:
    """Phase 2: the pending Services allocated on top of phase 1's state (undone after)."""
    for name, counts in held.assigned.items():
        reports[name].assigned.update(counts)
    planner.counts = {name: r.assigned for name, r in reports.items()}
    planner.undo = []
    plan = Plan(
        results=Layers(held.kept),
        assignments=Layers(held.records),
        release=dict(roster.releasing),
        pools=reports,
        incremental=incremental,
    )
    pending = [*roster.waiting.values(), *(held.holders[k] for k in held.moved)]
    plan.allocating = [s.key for s in pending]
    for s in sorted(pending, key=_ORDER):
        result = planner.allocate(s)
        if isinstance(result, Allocated):
            if s.current_ips:
                result = Allocated(result.ips, result.pool, s.current_ips, held.moved[s.key])
            record = planner.record(s, result, planner.by_name.get(result.pool))
            plan.assignments.added[record.key] = record
        plan.results.added[s.key] = result
    planner.rollback()
    return plan


def _forget(memo: PlanMemo, live: Mapping[str, Any], gone: list[str], incremental: bool) -> None:
    """Drop the memo's records and verdicts of Services that are gone."""
    if incremental:
        stale = [k for k in (*gone, *memo.allocated) if k not in live]
    else:
        stale = [k for k in (*memo.records, *memo.verdicts) if k not in live]
    for k in stale:
        memo.records.pop(k, None)
        memo.verdicts.pop(k, None)


def _update(planner: _Planner, held: _Held, gone: list[str], changed: list[ServiceInfo]) -> bool:
    """Bring the previous phase 1 up to date in place; False if a full pass is needed."""
    planner.use(held)
    return all(planner.release(k) for k in gone) and all(planner.admit(s) for s in changed)


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
        advs = tuple(replace(a, aggregation_length=32, aggregation_length_v6=128) for a in advs)
    if svc.attributes is not None:
        advs = tuple(svc.attributes.apply(a) for a in advs)
    return Assignment(
        namespace=svc.namespace,
        name=svc.name,
        uid=svc.uid,
        ips=res.ips,
        pool=res.pool,
        traffic_policy=svc.traffic_policy,
        advertisements=advs,
        data_path=data_path_target(svc, advs),
    )


def data_path_target(svc: ServiceInfo, advs: Iterable[Advertisement]) -> DataPathTarget | None:
    """Where announcers check the data path: the Service's ClusterIP and a TCP port of it.

    The port an advertisement names must be one of the Service's: a connect to another
    port of the ClusterIP matches no kube-proxy rule and would test nothing. The first
    advertisement that asks for the check decides the port.
    """
    check = next((a.data_path_check for a in advs if a.data_path_check is not None), None)
    if check is None:
        return None
    if not svc.cluster_ip:
        return DataPathTarget(problem="the Service has no ClusterIP to connect to")
    if not svc.tcp_ports:
        return DataPathTarget(problem="the Service has no TCP port to connect to")
    if check.port is not None and check.port not in svc.tcp_ports:
        return DataPathTarget(
            problem=f"dataPathCheck.port {check.port} is not a TCP port of the Service "
            f"(its TCP ports: {list(svc.tcp_ports)})"
        )
    return DataPathTarget(svc.cluster_ip, svc.tcp_ports[0] if check.port is None else check.port)
