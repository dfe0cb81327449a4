"""What the announcers' heartbeat Leases cost the API server: bytes, latency, CPU per renewal.

Run: ``.venv/bin/python -m bench.heartbeat_bench [--nodes N] [--interval S] [--seconds S]``.
A real kube-apiserver + etcd (``testbed.controlplane``, no controller manager); N
``HeartbeatWriter``s, the announcer's own code, each renewing its Lease every ``interval``
seconds from one thread pool, so the API server sees the write rate of N nodes. Printed
(and written to bench/results/heartbeat.json): renewals done, the PUT body's bytes, the
renewal latency (median, p99), and kube-apiserver's and etcd's CPU seconds per 1,000
renewals, read from /proc, less what they use idle over as long a window first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from announcer.kube.heartbeat import HeartbeatWriter, put_body
from bench.announcer_bench import cpu_seconds
from exalb.kube import rest
from testbed.binaries import ROOT
from testbed.controlplane import ControlPlane

NAMESPACE = "exalb-system"


def run(nodes: int, interval: float, seconds: float) -> dict[str, Any]:
    cp = ControlPlane(Path(tempfile.mkdtemp(prefix="exalb-bench-heartbeat-")) / "cp")
    try:
        cp.start(controller_manager=False)
        api = rest.connect(str(cp.admin_kubeconfig), user_agent="heartbeat-bench")
        api.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        writers = [HeartbeatWriter(api, NAMESPACE, f"node-{i}", 40) for i in range(nodes)]
        for w in writers:
            w.renew_once()  # creates each Lease: not counted
        pids = {name: cp.procs[name].popen.pid for name in ("kube-apiserver", "etcd")}
        idle_from = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        time.sleep(seconds)
        before = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        idle = {name: (before[name] - idle_from[name]) / seconds for name in pids}
        latencies: list[float] = []

        def renew(w: HeartbeatWriter) -> None:
            t0 = time.perf_counter()
            w.renew_once()
            latencies.append(time.perf_counter() - t0)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            tick = 0
            while time.monotonic() - started < seconds:
                list(pool.map(renew, writers))
                tick += 1
                time.sleep(max(0.0, started + tick * interval - time.monotonic()))
        elapsed = time.monotonic() - started
        after = {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}
        lease = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/"
                        "exalb-announcer-node-0")  # fmt: skip
        latencies.sort()
        busy = {name: after[name] - before[name] - idle[name] * elapsed for name in pids}
        per_thousand = {name: round(busy[name] * 1000 / len(latencies), 3) for name in pids}
        return {
            "nodes": nodes,
            "interval_s": interval,
            "renewals": len(latencies),
            "writes_per_s": round(len(latencies) / elapsed, 1),
            "stored_lease_bytes": len(json.dumps(lease).encode()),  # managedFields included
            "put_body_bytes": len(json.dumps(put_body(lease, lease["spec"])).encode()),
            "latency_median_ms": round(statistics.median(latencies) * 1000, 2),
            "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "cpu_s_per_1000_renewals": per_thousand,
            "idle_cpu_s_per_s": {name: round(idle[name], 3) for name in pids},
            "load_average": os.getloadavg()[0],
        }
    finally:
        cp.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between renewal rounds")
    p.add_argument("--seconds", type=float, default=30.0)
    args = p.parse_args()
    result = run(args.nodes, args.interval, args.seconds)
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results" / "heartbeat.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
