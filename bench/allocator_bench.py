"""Allocator benchmark: Service create -> IP in status, 10,000 Services, RSS, ConfigMap size.

Run: ``make bench`` or ``.venv/bin/python -m bench.allocator_bench``. Everything is real: a
kube-apiserver + etcd from tools/kubebin, and the allocator as its own process with the
chart's RBAC. Latency is measured from just before the create request to the moment this
process's own watch sees the IP in the Service status (so it includes the allocator's watch
delay, its reconcile, both writes, and the watch back to us).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

from bench.announcer_bench import cores_over, wait_quiet
from bench.stats import IngressClock, summary_ms
from exalb.assignments import LABEL
from exalb.kube import rest
from testbed.allocator import AllocatorProc, apply_rbac, create_pool, start_allocator
from testbed.controlplane import ControlPlane, start_control_plane
from testbed.manifests import install_crds

EXALB_NS = "exalb-system"
# RFC 2544 benchmarking space; allocation bookkeeping only, never a traffic target.
POOL_ADDRESSES = ["198.18.0.0/18"]


def service_body(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        # BGP load balancing needs no NodePorts; 10,000 Services would exhaust the range.
        "spec": {
            "type": "LoadBalancer",
            "allocateLoadBalancerNodePorts": False,
            "ports": [{"port": 80, "protocol": "TCP"}],
            "selector": {"app": name},
        },
    }


FOREIGN_CLASS = "example.com/not-exalb"  # a loadBalancerClass the allocator leaves alone


def foreign_creates(api: client.ApiClient, ns: str, n: int, prefix: str) -> dict[str, Any]:
    """The create request's round trip alone, one at a time, for Services exalb ignores
    (another ``loadBalancerClass``): what the API server costs at this size by itself."""
    core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
    took = []
    for i in range(n):
        body = service_body(f"{prefix}{i:04d}")
        body["spec"]["loadBalancerClass"] = FOREIGN_CLASS
        t0 = time.monotonic()
        core.create_namespaced_service(ns, body, _preload_content=False)
        took.append(time.monotonic() - t0)
    return {**summary_ms(took), "load_average": _load()}


def _setup(cp: ControlPlane, api: client.ApiClient, namespaces: list[str]) -> None:
    install_crds(api)
    core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
    for ns in [EXALB_NS, *namespaces]:
        core.create_namespace({"metadata": {"name": ns}})
    apply_rbac(api, EXALB_NS)
    create_pool(api, EXALB_NS, "bench", POOL_ADDRESSES)


def sequential(api: client.ApiClient, watch: rest.Client, ns: str, n: int) -> dict[str, Any]:
    """Creates one at a time: create → IP in status, and the create request's own round trip."""
    core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
    clock = IngressClock(watch, ns).start()
    lat, create = [], []
    try:
        for i in range(n):
            name = f"seq{i:04d}"
            t0 = time.monotonic()
            core.create_namespaced_service(ns, service_body(name), _preload_content=False)
            create.append(time.monotonic() - t0)
            if not clock.wait([f"{ns}/{name}"], 30):
                raise RuntimeError(f"{name} got no IP in 30 s")
            lat.append(clock.seen[f"{ns}/{name}"] - t0)
    finally:
        clock.stop()
    return {**summary_ms(lat), "create_request": summary_ms(create)}


def per_create(
    api: client.ApiClient, watch: rest.Client, alloc: AllocatorProc, ns: str, n: int
) -> dict[str, Any]:
    """``sequential``, with where each create's time went: the allocator's reconcile phases
    (summed over its passes, per create), the ConfigMap bytes it wrote, and the load."""
    before, load_before = _phases(alloc), _load()
    latency = sequential(api, watch, ns, n)
    after, load_after = _phases(alloc), _load()
    delta = {k: after[k] - before[k] for k in after}
    phases = {p: round(delta[p] / n * 1000, 2) for p in PHASES}
    accounted = latency["create_request"]["mean_ms"] + sum(phases.values())
    return {
        **latency,
        "per_create": {
            "passes": round(delta["passes"] / n, 2),
            "create_request_ms": latency["create_request"]["mean_ms"],
            **{f"{p}_ms": v for p, v in phases.items()},
            # watch deliveries (the create to the allocator, the status to us) and waits for
            # a pass; negative when a pass runs on after the status is visible (the annotation)
            "rest_ms": round(latency["mean_ms"] - accounted, 2),
            "configmap_bytes_written": round(delta["bytes_written"] / n),
            "configmap_shards_written": round(delta["shards_written"] / n, 2),
        },
        "load_average": [load_before, load_after],
    }


def burst(
    api: client.ApiClient, watch: rest.Client, ns: str, n: int, prefix: str = "burst"
) -> dict[str, Any]:
    core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
    clock = IngressClock(watch, ns).start()
    started: dict[str, float] = {}

    def create(i: int) -> None:
        name = f"{prefix}{i:05d}"
        started[f"{ns}/{name}"] = time.monotonic()
        core.create_namespaced_service(ns, service_body(name), _preload_content=False)

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(n)))
        created = time.monotonic() - t0
        if not clock.wait(list(started), 300):
            raise RuntimeError(f"only {len(clock.seen)}/{n} got an IP")
        done = max(clock.seen[k] for k in started) - t0
        lat = [clock.seen[k] - started[k] for k in started]
    finally:
        clock.stop()
    return {**summary_ms(lat), "create_all_s": round(created, 2), "all_allocated_s": round(done, 2)}


def create_only(api: client.ApiClient, ns: str, n: int) -> float:
    core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want model objects
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: core.create_namespaced_service(
                    ns, service_body(f"bulk{i:05d}"), _preload_content=False
                ),
                range(n),
            )
        )
    return time.monotonic() - t0


def count_allocated(api: client.ApiClient, ns: str) -> int:
    resp: Any = client.CoreV1Api(api).list_namespaced_service(ns, _preload_content=False)
    items = json.loads(resp.data)["items"]
    return sum(1 for s in items if (s.get("status", {}).get("loadBalancer") or {}).get("ingress"))


def configmap_size(api: client.ApiClient) -> dict[str, Any]:
    cms = client.CoreV1Api(api).list_namespaced_config_map(EXALB_NS, label_selector=f"{LABEL}=true")
    sizes = [sum(len(k) + len(v) for k, v in (cm.data or {}).items()) for cm in cms.items]
    entries = sum(len(cm.data or {}) - 1 for cm in cms.items)
    return {
        "shards": len(sizes),
        "bytes_per_shard": sizes,
        "total_bytes": sum(sizes),
        "entries": entries,
        "mean_entry_bytes": round(sum(sizes) / max(entries, 1), 1),
    }


def run(
    out: Path, big: int, empty: bool = True, samples: int = 200, burst_size: int = 1000
) -> dict[str, Any]:
    """The whole benchmark; its work directory (the control planes' files) goes with it."""
    work = Path(tempfile.mkdtemp(prefix="exalb-bench-alloc-"))
    try:
        return _run(work, out, big, empty, samples, burst_size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    work: Path, out: Path, big: int, empty: bool, samples: int, burst_size: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(key: str, value: Any) -> None:
        """Keep each figure as soon as it is measured: a later failure must not lose it."""
        results[key] = value
        out.write_text(json.dumps(results, indent=2))

    # Run 1: an empty cluster.
    if empty:
        cp = start_control_plane(work / "cp1")
        try:
            with cp.api_client() as api:
                _setup(cp, api, ["small", "other"])
                time.sleep(5)  # the set-up's own writes leave the watch caches
                record("control_plane_idle_empty", idle_cpu(cp))
                alone = foreign_creates(api, "other", samples, "e")
                record("create_request_no_allocator_empty", alone)
                alloc = start_allocator(cp, EXALB_NS, work, "bench-1", log_level="info")
                watch = rest.connect(str(cp.admin_kubeconfig))
                record("single_empty", per_create(api, watch, alloc, "small", samples))
                record(f"burst_{burst_size}_empty", burst(api, watch, "small", burst_size))
                alloc.proc.stop()
        finally:
            cp.stop()

    # Run 2: `big` Services created while the allocator is down, then allocated by it.
    cp = start_control_plane(work / "cp2")
    try:
        with cp.api_client() as api:
            watch = rest.connect(str(cp.admin_kubeconfig))
            _setup(cp, api, ["bulk", "after", "other"])
            record("create_only_s", round(create_only(api, "bulk", big), 2))
            time.sleep(5)
            record(f"control_plane_idle_with_{big}_existing", idle_cpu(cp))
            # A watch, not a list every half second: listing 10,000 Services would take the
            # API server's CPU from the allocator being measured.
            clock = IngressClock(watch, "bulk").start()
            try:
                t0 = time.monotonic()
                alloc = start_allocator(
                    cp, EXALB_NS, work, "bench-2", wait_ready=False, log_level="info"
                )
                if not clock.wait_count(big, 600):
                    raise RuntimeError("allocation did not finish in 10 minutes")
                record(f"allocate_{big}_s", round(max(clock.seen.values()) - t0, 2))
            finally:
                clock.stop()
            if count_allocated(api, "bulk") != big:  # the API's word, once
                raise RuntimeError("the watch saw every IP but a list does not")
            # What follows measures a steady state: the start-up's backlog (an Event per
            # allocated Service, the ConfigMaps, the pool status) is written first.
            quiet = wait_quiet({"allocator": alloc.proc.pid}, cores=0.05, sample=1.0, timeout=180)
            record(f"settled_after_{big}_s", quiet)
            record(f"rss_at_{big}_kib", _rss(alloc))
            record(f"configmap_at_{big}", configmap_size(api))
            single = per_create(api, watch, alloc, "after", samples)
            record(f"single_with_{big}_existing", single)
            ignored = foreign_creates(api, "other", samples, "running")
            record(f"create_request_ignored_with_{big}_existing", ignored)
            if "single_empty" in results:
                p99_empty = results["single_empty"]["p99_ms"]
                record("p99_ratio_to_empty", round(single["p99_ms"] / p99_empty, 2))
            many = burst(api, watch, "after", burst_size)
            record(f"burst_{burst_size}_with_{big}_existing", many)
            record(f"rss_at_{big + samples + burst_size}_kib", _rss(alloc))
            results["reconcile_metrics"] = {
                "plan_seconds_sum": alloc.metric("exalb_allocator_plan_duration_seconds_sum"),
                "plan_seconds_count": alloc.metric("exalb_allocator_plan_duration_seconds_count"),
                "reconcile_seconds_sum": alloc.metric(
                    "exalb_allocator_reconcile_duration_seconds_sum"
                ),
                "reconcile_seconds_count": alloc.metric(
                    "exalb_allocator_reconcile_duration_seconds_count"
                ),
                "plans_full": alloc.metric("exalb_allocator_plans_total", kind="full"),
                "plans_incremental": alloc.metric(
                    "exalb_allocator_plans_total", kind="incremental"
                ),
                "phase_seconds": {
                    phase: alloc.metric(
                        "exalb_allocator_reconcile_phase_duration_seconds_sum", phase=phase
                    )
                    for phase in PHASES
                },
            }
            alloc.proc.stop()
            alone = foreign_creates(api, "other", samples, "stopped")
            record(f"create_request_no_allocator_with_{big}_existing", alone)
    finally:
        cp.stop()
    out.write_text(json.dumps(results, indent=2))
    return results


PHASES = ("read", "plan", "diff", "write", "publish", "finish")


def _phases(alloc: AllocatorProc) -> dict[str, float]:
    out = {
        p: alloc.metric("exalb_allocator_reconcile_phase_duration_seconds_sum", phase=p) or 0.0
        for p in PHASES
    }
    out["passes"] = alloc.metric("exalb_allocator_reconcile_duration_seconds_count") or 0.0
    out["bytes_written"] = alloc.metric("exalb_allocator_assignments_written_bytes_total") or 0.0
    out["shards_written"] = (
        alloc.metric("exalb_allocator_api_writes_total", kind="ConfigMap") or 0.0
    )
    return out


def idle_cpu(cp: ControlPlane, seconds: float = 10.0) -> dict[str, Any]:
    """The control plane's CPU (cores) over ``seconds`` in which nobody sends it a request:
    what it costs by itself at this size, beside what the creates measure."""
    used = cores_over({name: proc.pid for name, proc in cp.procs.items()}, seconds)
    return {"cores": {n: round(c, 3) for n, c in used.items()}, "load_average": _load()}


def _load() -> float:
    """The 1-minute load average: the machine is shared, and the figures move with it."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _rss(alloc: AllocatorProc) -> dict[str, int]:
    rss, hwm = alloc.rss_kib()
    return {"rss": rss, "peak": hwm}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--services", type=int, default=10000)
    p.add_argument("--out", type=Path, default=Path("bench/results/allocator.json"))
    p.add_argument(
        "--skip-empty",
        action="store_true",
        help="skip the empty-cluster run (only the run with --services existing Services)",
    )
    args = p.parse_args()
    print(json.dumps(run(args.out, args.services, empty=not args.skip_empty), indent=2))


if __name__ == "__main__":
    main()
