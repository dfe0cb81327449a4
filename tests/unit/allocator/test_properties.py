"""Property tests of the allocation plan: the invariants MetalLB's users were burnt by."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.core.plan import Allocated, Plan, PlanMemo, PoolSpec, make_plan
from allocator.core.service import ServiceInfo
from allocator.core.sharing import conflict
from tests.unit.allocator.builders import svc

BASE = int(ipaddress.IPv4Address("198.51.100.0"))


@st.composite
def pools(draw: st.DrawFn) -> list[PoolSpec]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, 40))
        size = draw(st.integers(1, 12))
        a = ipaddress.IPv4Address(BASE + start)
        b = ipaddress.IPv4Address(BASE + start + size - 1)
        spec: dict[str, Any] = {"addresses": [f"{a}-{b}"]}
        if draw(st.booleans()):
            spec["autoAssign"] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:
            spec["serviceAllocation"] = {"namespaces": ["ns1"], "priority": draw(st.integers(0, 3))}
        out.append(PoolSpec(f"p{i}", spec, f"2026-01-0{i + 1}T00:00:00Z"))
    return out


@st.composite
def services(draw: st.DrawFn) -> list[ServiceInfo]:
    out = []
    for i in range(draw(st.integers(0, 30))):
        ann: dict[str, str] = {}
        if draw(st.integers(0, 2)) == 0:
            ann["exalb.io/allow-shared-ip"] = draw(st.sampled_from(["k1", "k2"]))
        r = draw(st.integers(0, 9))
        if r == 0:
            ann["exalb.io/loadBalancerIPs"] = str(
                ipaddress.IPv4Address(BASE + draw(st.integers(0, 55)))
            )
        elif r == 1:
            ann["exalb.io/address-pool"] = draw(st.sampled_from(["p0", "p1", "p2"]))
        out.append(
            svc(
                f"s{i}",
                ns=draw(st.sampled_from(["ns1", "ns2"])),
                created=f"2026-03-01T00:00:{draw(st.integers(0, 59)):02d}Z",
                ports=tuple(draw(st.sets(st.integers(1, 4), min_size=1, max_size=2))),
                annotations=ann,
                etp=draw(st.sampled_from(["Cluster", "Local"])),
                selector={"app": draw(st.sampled_from(["a", "b"]))},
            )
        )
    return out


def allocated(plan: Plan) -> dict[str, Allocated]:
    return {k: v for k, v in plan.results.items() if isinstance(v, Allocated)}


def with_status(s: ServiceInfo, res: Allocated | None) -> ServiceInfo:
    from dataclasses import replace

    if res is None:
        return s
    return replace(s, current_ips=res.ips, current_pool=res.pool)


def check_invariants(plan: Plan, svcs: list[ServiceInfo], specs: list[PoolSpec]) -> None:
    by_key = {s.key: s for s in svcs}
    holders: dict[str, list[ServiceInfo]] = {}
    for key, res in allocated(plan).items():
        if res.frozen:
            continue  # kept, by design, in a pool that is broken right now; never re-checked
        for ip in res.ips:
            holders.setdefault(ip, []).append(by_key[key])
        # never an IP outside its (ready) pool
        report = plan.pools[res.pool]
        assert report.ready
        spec = next(p for p in specs if p.name == res.pool)
        lo, hi = spec.spec["addresses"][0].split("-")
        for ip in res.ips:
            assert (
                int(ipaddress.IPv4Address(lo))
                <= int(ipaddress.IPv4Address(ip))
                <= int(ipaddress.IPv4Address(hi))
            )
    # never two owners of an IP unless they legally share
    for ip, owners in holders.items():
        for i, a in enumerate(owners):
            for b in owners[i + 1 :]:
                assert conflict(a, b) is None, (ip, a.key, b.key)


@settings(max_examples=300, deadline=None)
@given(pools(), services(), st.randoms(use_true_random=False))
def test_plan_invariants_determinism_and_restart(
    specs: list[PoolSpec], svcs: list[ServiceInfo], rnd: random.Random
) -> None:
    plan = make_plan(svcs, specs)
    check_invariants(plan, svcs, specs)

    # the same inputs in any order give the same choice
    shuffled_s, shuffled_p = list(svcs), list(specs)
    rnd.shuffle(shuffled_s)
    rnd.shuffle(shuffled_p)
    assert make_plan(shuffled_s, shuffled_p).results == plan.results

    # a restart from the Services' status gives the same state, and nothing moves
    done = allocated(plan)
    restarted = [with_status(s, done.get(s.key)) for s in svcs]
    plan2 = make_plan(restarted, specs)
    assert {k: v.ips for k, v in allocated(plan2).items()} == {k: v.ips for k, v in done.items()}

    # memoised plans (as the controller runs them) equal fresh ones, pass after pass
    memo = PlanMemo()
    for inputs in (svcs, restarted, restarted, svcs):
        assert make_plan(inputs, specs, memo=memo).results == make_plan(inputs, specs).results

    # deleting one Service never changes anybody else's IP
    if restarted:
        victim = rnd.choice(restarted)
        rest = [s for s in restarted if s.key != victim.key]
        plan3 = make_plan(rest, specs)
        for k, v in allocated(plan2).items():
            if k != victim.key:
                got = plan3.results[k]
                assert isinstance(got, Allocated) and got.ips == v.ips
        check_invariants(plan3, rest, specs)


# --- incremental plans ------------------------------------------------------
def _equal_plans(a: Plan, b: Plan) -> None:
    assert a.results == b.results
    assert a.assignments == b.assignments
    assert a.pools == b.pools
    assert a.release.keys() == b.release.keys()


def _random_ip(data: st.DataObject) -> str:
    return str(ipaddress.IPv4Address(BASE + data.draw(st.integers(0, 55))))


OPS = (
    "create",  # a new pending Service
    "write_back",  # the controller wrote the plan's IPs to some Services' status
    "delete",
    "edit",  # the user changed what a Service asks for (same status)
    "status",  # someone else wrote a status (perhaps an address another Service holds)
    "clear",  # the status was cleared
    "not_ours",  # the type changed
    "pools",  # an operator edited the pools
)


@settings(max_examples=300, deadline=None)
@given(pools(), services(), st.data())
def test_incremental_plans_equal_full_plans_after_any_changes(
    specs: list[PoolSpec], svcs: list[ServiceInfo], data: st.DataObject
) -> None:
    """The controller plans with a memo and hands it the changed Services, updating phase 1
    in place; any sequence of changes must give exactly what a fresh, full plan of the same
    inputs gives, without walking the Services that did not change."""
    from dataclasses import replace

    memo = PlanMemo()
    current = {s.key: s for s in svcs}
    plan = make_plan(current.values(), specs, memo=memo)
    _equal_plans(plan, make_plan(current.values(), specs))
    serial = len(svcs)
    for _ in range(data.draw(st.integers(1, 12))):
        previous = dict(current)
        op = data.draw(st.sampled_from(OPS))
        keys = sorted(current)
        victim = current[data.draw(st.sampled_from(keys))] if keys else None
        before = {k: r.ips for k, r in allocated(plan).items() if r.ips == current[k].current_ips}
        if op == "create":
            more = data.draw(services())
            for template in more[: data.draw(st.integers(1, 3))]:
                serial += 1
                s = replace(template, name=f"n{serial}")
                current[s.key] = s
        elif op == "write_back":
            done = allocated(plan)
            for k in data.draw(st.sets(st.sampled_from(keys))) if keys else ():
                if k in done and current[k].current_ips != done[k].ips:
                    current[k] = with_status(current[k], done[k])
        elif victim is not None and op == "delete":
            del current[victim.key]
        elif victim is not None and op == "edit":
            ann: dict[str, str] = {}
            if data.draw(st.booleans()):
                ann["exalb.io/allow-shared-ip"] = data.draw(st.sampled_from(["k1", "k2"]))
            if data.draw(st.integers(0, 3)) == 0:
                ann["exalb.io/loadBalancerIPs"] = _random_ip(data)
            edited = svc(
                victim.name,
                ns=victim.namespace,
                created=victim.created,
                ports=tuple(data.draw(st.sets(st.integers(1, 4), min_size=1, max_size=2))),
                annotations=ann,
                ingress=victim.current_ips,
                pool=victim.current_pool,
            )
            current[victim.key] = edited
        elif victim is not None and op == "status":
            ips = (_random_ip(data),)
            pool = data.draw(st.sampled_from(["p0", "p1", "p2", "gone"]))
            current[victim.key] = replace(victim, current_ips=ips, current_pool=pool)
        elif victim is not None and op == "clear":
            current[victim.key] = replace(victim, current_ips=(), current_pool=None)
        elif victim is not None and op == "not_ours":
            current[victim.key] = replace(victim, ours=False)
        elif op == "pools":
            specs = data.draw(pools())
        changes: dict[str, ServiceInfo | None] | None = {
            k: current.get(k)
            for k in previous.keys() | current.keys()
            if previous.get(k) is not current.get(k)
        }
        named_unchanged = data.draw(st.booleans())
        if keys and named_unchanged:  # a key named without a change costs nothing
            extra = data.draw(st.sampled_from(keys))
            changes = {**(changes or {}), extra: current.get(extra)}
        if data.draw(st.integers(0, 4)) == 0:
            changes = None  # the controller walks everything now and then
        walked = _Walks(current.values())
        # a plan's mappings are the memo's: what the last one said, before the next plan
        last_results, last_assignments = dict(plan.results), dict(plan.assignments)
        plan = make_plan(walked, specs, memo=memo, changes=changes)
        assert changes is None or walked.count == 0
        _equal_plans(plan, make_plan(current.values(), specs))
        check_invariants(plan, list(current.values()), specs)
        if plan.touched is not None:
            # what the plan says is untouched is the very same result and record as before
            for k in (last_results.keys() | plan.results.keys()) - plan.touched:
                assert last_results.get(k) is plan.results.get(k), k
                entry = k.replace("/", ".")
                assert last_assignments.get(entry) is plan.assignments.get(entry), k
        if op in ("create", "write_back", "delete"):
            # nobody's IP changes because somebody else came, got an IP or left
            for k, ips in before.items():
                if k in current and current[k].ours:
                    got = plan.results[k]
                    assert isinstance(got, Allocated) and got.ips == ips, (op, k)


class _Walks:
    """An iterable that counts how often it is walked."""

    def __init__(self, items: Iterable[ServiceInfo]) -> None:
        self.items = list(items)
        self.count = 0

    def __iter__(self) -> Iterator[ServiceInfo]:
        self.count += 1
        return iter(self.items)


def test_a_create_among_many_allocated_services_updates_instead_of_recomputing() -> None:
    spec = PoolSpec("p0", {"addresses": ["198.51.100.0/24"]}, "2026-01-01T00:00:00Z")
    memo = PlanMemo()
    svcs = {
        s.key: s
        for s in (svc(f"s{i:03d}", created=f"2026-03-01T00:00:{i % 60:02d}Z") for i in range(200))
    }
    plan = make_plan(svcs.values(), [spec], memo=memo)
    for k, res in allocated(plan).items():
        svcs[k] = with_status(svcs[k], res)
    plan = make_plan(svcs.values(), [spec], memo=memo)
    assert not plan.incremental  # 200 new holders at once: recomputed
    new = svc("new", created="2026-03-02T00:00:00Z")
    svcs[new.key] = new
    plan = make_plan(svcs.values(), [spec], memo=memo)
    assert plan.incremental
    assert plan.results[new.key] == Allocated(("198.51.100.200",), "p0")
    svcs[new.key] = with_status(new, allocated(plan)[new.key])
    plan = make_plan(svcs.values(), [spec], memo=memo)
    assert plan.incremental and plan.pools["p0"].assigned == {4: 201}
    # a pool edit recomputes phase 1, and so does asking for a full plan
    wider = PoolSpec("p0", {"addresses": ["198.51.100.0/23"]}, "2026-01-01T00:00:00Z")
    assert not make_plan(svcs.values(), [wider], memo=memo).incremental
    assert make_plan(svcs.values(), [wider], memo=memo).incremental
    assert not make_plan(svcs.values(), [wider], memo=memo, full=True).incremental
