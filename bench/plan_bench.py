"""The allocator's plan alone, in-process: one create at a time with N Services allocated.

``allocator_bench`` times a create end to end through the API server, where the plan
phase is wall time inside a process whose watch threads share the interpreter lock.
This times the pure function alone, the way the controller calls it: a new Service
(``changes`` names it), then the same Service with its IP in status, each one plan.
Run: ``python -m bench.plan_bench --services 10000 --creates 200``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import time
from typing import Any

from allocator.core.plan import PlanMemo, PoolSpec, make_plan
from allocator.core.service import ServiceInfo, parse_service

POOL = PoolSpec("bulk", {"addresses": ["198.18.0.0/17"]}, "2026-01-01T00:00:00Z")
FIRST = ipaddress.ip_address("198.18.0.0")


def service(name: str, ips: tuple[str, ...] = ()) -> ServiceInfo:
    """A LoadBalancer Service as the API returns it; with ``ips``, allocated from POOL."""
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"exalb.io/ip-allocated-from-pool": POOL.name} if ips else {},
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "ipFamilies": ["IPv4"]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }
    return parse_service(obj)


def run(services: int, creates: int) -> dict[str, Any]:
    held = {s.key: s for s in (service(f"s{i}", (str(FIRST + i),)) for i in range(services))}
    memo = PlanMemo()
    t0 = time.perf_counter()
    make_plan(held.values(), [POOL], {}, {}, memo, full=True)
    first = time.perf_counter() - t0
    per_create, incremental = [], 0
    for i in range(creates):
        new = service(f"new{i}")
        t0 = time.perf_counter()
        plan = make_plan(held.values(), [POOL], {}, {}, memo, changes={new.key: new})
        ips = plan.results[new.key].ips  # type: ignore[union-attr]
        written = service(f"new{i}", ips)
        held[written.key] = written
        again = make_plan(held.values(), [POOL], {}, {}, memo, changes={written.key: written})
        per_create.append(time.perf_counter() - t0)
        incremental += plan.incremental + again.incremental
    ms = sorted(t * 1000 for t in per_create)
    return {
        "services": services,
        "first_full_plan_ms": round(first * 1000, 1),
        "per_create_ms": {
            "n": len(ms),
            "p50": round(statistics.median(ms), 3),
            "p99": round(ms[int(len(ms) * 0.99) - 1], 3),
        },
        "incremental_plans": incremental,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--creates", type=int, default=200)
    args = p.parse_args()
    for n in (0, args.services):
        print(json.dumps(run(n, args.creates)))


if __name__ == "__main__":
    main()
