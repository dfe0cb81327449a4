"""Allocator failover: SIGKILL the leader, create a Service, time until its IP is in status.

Run: ``.venv/bin/python -m bench.failover_bench [--repetitions 5]``. Everything is real: a
kube-apiserver + etcd, and the allocators as their own processes with the chart's RBAC.
Each repetition has a leader and a warm standby (caches synced, watching the Lease); the
leader is killed at a random moment within its renew period (the worst case for the
standby is a kill right after a renew), a Service is created at once, and the time runs
from the kill to the moment this process's own watch sees the IP. The standby's
``is_leader`` metric, polled every 50 ms, splits that time into "took the Lease" and
"allocated". The survivor leads the next repetition against a fresh standby.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.allocator_bench import service_body
from bench.stats import IngressClock
from exalb.kube import rest
from testbed.allocator import AllocatorProc, apply_rbac, create_pool, start_allocator
from testbed.controlplane import ControlPlane
from testbed.manifests import install_crds
from testbed.procs import wait_for

EXALB_NS = "exalb-system"
SERVICES_NS = "failover"
# RFC 2544 benchmarking space; allocation bookkeeping only, never a traffic target.
POOL_ADDRESSES = ["198.18.0.0/24"]
LEASES = {
    "default (15/10/2 s)": (15.0, 10.0, 2.0),
    "short (4/3/0.5 s)": (4.0, 3.0, 0.5),
}


def _flags(lease: tuple[float, float, float]) -> tuple[str, ...]:
    duration, deadline, period = lease
    return (
        f"--lease-duration={duration}",
        f"--renew-deadline={deadline}",
        f"--retry-period={period}",
    )


STARTED: list[AllocatorProc] = []  # every allocator this run started, stopped at its end


def _start(cp: ControlPlane, work: Path, identity: str, lease: tuple[float, ...]) -> AllocatorProc:
    flags = _flags((lease[0], lease[1], lease[2]))
    handle = start_allocator(cp, EXALB_NS, work, identity, flags, log_level="info")
    STARTED.append(handle)
    return handle


def _once(
    cp: ControlPlane,
    core: Any,
    clock: IngressClock,
    leader: AllocatorProc,
    work: Path,
    lease: tuple[float, float, float],
    n: int,
) -> tuple[dict[str, float], AllocatorProc]:
    standby = _start(cp, work, f"standby-{n}", lease)
    time.sleep(lease[2] * 2)  # the standby has read the Lease at least once
    time.sleep(random.uniform(0, lease[2]))  # the kill lands anywhere in a renew period
    name = f"svc-{n}"
    leader.proc.kill()
    t0 = time.monotonic()
    core.create_namespaced_service(SERVICES_NS, service_body(name), _preload_content=False)
    took_lease = None
    deadline = t0 + lease[0] * 3
    while time.monotonic() < deadline:
        if took_lease is None and standby.is_leader():
            took_lease = time.monotonic() - t0
        if clock.wait([f"{SERVICES_NS}/{name}"], 0.05):
            break
    else:
        raise RuntimeError(f"{name} got no IP within {lease[0] * 3} s of the kill")
    allocated = clock.seen[f"{SERVICES_NS}/{name}"] - t0
    return {
        "kill_to_ip_s": round(allocated, 2),
        "kill_to_lease_s": round(took_lease if took_lease is not None else allocated, 2),
    }, standby


def _summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    ips = [s["kill_to_ip_s"] for s in samples]
    leases = [s["kill_to_lease_s"] for s in samples]
    return {
        "n": len(samples),
        "kill_to_ip_median_s": round(statistics.median(ips), 2),
        "kill_to_ip_max_s": round(max(ips), 2),
        "kill_to_lease_median_s": round(statistics.median(leases), 2),
        "samples": samples,
    }


def run(repetitions: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="exalb-bench-failover-"))
    cp = ControlPlane(work / "cp")
    results: dict[str, Any] = {}
    try:
        cp.start(controller_manager=False)  # allocation needs none; it would only add noise
        with cp.api_client() as api:
            install_crds(api)
            core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
            for ns in (EXALB_NS, SERVICES_NS):
                core.create_namespace({"metadata": {"name": ns}})
            apply_rbac(api, EXALB_NS)
            create_pool(api, EXALB_NS, "bench", POOL_ADDRESSES)
            clock = IngressClock(rest.connect(str(cp.admin_kubeconfig)), SERVICES_NS).start()
            try:
                for label, lease in LEASES.items():
                    leader = _start(cp, work, f"first-{lease[0]:g}", lease)
                    wait_for("a leader", leader.is_leader, lease[0] * 3, interval=0.1)
                    samples = []
                    for n in range(repetitions):
                        sample, leader = _once(
                            cp, core, clock, leader, work, lease, len(results) * 100 + n
                        )
                        print(label, sample, flush=True)
                        samples.append(sample)
                    leader.proc.stop()
                    results[label] = _summary(samples)
            finally:
                clock.stop()
    finally:
        for proc in STARTED:
            proc.proc.stop()
        cp.stop()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("bench/results/failover.json"))
    args = p.parse_args()
    results = run(args.repetitions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    for label, r in results.items():
        print(
            f"{label}: kill -> IP median {r['kill_to_ip_median_s']} s,"
            f" max {r['kill_to_ip_max_s']} s"
            f" (kill -> lease median {r['kill_to_lease_median_s']} s, n={r['n']})"
        )


if __name__ == "__main__":
    main()
