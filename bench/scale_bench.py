"""Many nodes: what exalb's announcers cost the API server, and how fast they follow.

Run: ``.venv/bin/python -m bench.scale_bench`` (``make bench``; not part of ``make test``).
One real kube-apiserver + etcd, one GoBGP router, and up to ``--nodes`` simulated nodes,
each a real ``exalb-announcer`` process with its own ExaBGP, peering with the router from
its own loopback address (127.1.91.<10+i>) with next hop 192.0.2.<10+i>. ``--services``
Services are published as the announcers read them: an EndpointSlice each (Local policy,
ready endpoints on three nodes, pod addresses in 198.18.128.0/17) and an assignment entry
(an address in 198.18.0.0/17), so a node announces about ``3 * services / nodes`` /32s.
Each node also has a probe Service (203.0.113.<i>) with its one endpoint on that node.
``--others`` more EndpointSlices belong to Services exalb does not serve (ClusterIP: no
assignment, no ``exalb.io/assigned`` label); the slices of assigned Services carry the
label, as the EndpointSlice controller copies it from a Service this version's allocator
labelled.

Every Node object exists from the start; announcers are started in steps (``--steps``,
e.g. ``10,30,50``). Before the first step and after each one, the same measuring window
runs: ``--window`` seconds of readiness flips of the probes at ``--flip-rate`` per second
(and as many flips of the other Services' slices, when there are any), during which the
benchmark reads

* the API server's and etcd's CPU seconds and RSS (from /proc);
* watch traffic: the API server's own ``apiserver_watch_events_sizes`` (bytes and events
  sent to watchers) per resource, and the watches open (``apiserver_longrunning_requests``);
* BGPSessionStatus writes (``apiserver_request_total`` for that resource);
* readiness flip -> the router's RIB (GoBGP's ``monitor global rib`` stream);

then every announcer's RSS (with its ExaBGP and bridge) and CPU seconds. After the last
step, every announcer is stopped at once and all are started at once (a DaemonSet's full
restart): the time until the router has accepted every node's routes again, and the CPU
seconds the API server and the announcers spent on it.

Up to here the shards do not vouch for the label (as an allocator before the change
writes them), so every announcer watches every EndpointSlice. With ``--narrow`` the
shards are then written again vouching for it (``exalb.assignments.slicescope``): every
announcer narrows its watch while running (the time it takes, and the fewest paths the
router held meanwhile), and the window and the full restart run again.

Window 0 (no announcers) is the "without exalb" figure; the difference is exalb's cost.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

import exalb.assignments as contract
from bench.announcer_bench import (
    NS,
    RibMonitor,
    cpu_seconds,
    rss_kib,
    rss_mib,
    wait_quiet,
    write_shards,
)
from bench.stats import summary_ms
from exalb.assignments.slicescope import SCOPE_ANNOTATION, SERVICE_LABEL, SLICE_SELECTOR
from testbed.controlplane import ADMIN_TOKEN, ControlPlane, start_control_plane
from testbed.lab import Lab
from testbed.manifests import install_crds
from testbed.procs import free_port
from testbed.routers import GoBgp

HERE = Path(__file__).resolve().parent
LAB_ID = 91
BULK_POOL, PROBE_POOL = "bulk", "probe"
ENDPOINTS_PER_SERVICE = 3
WRITE_VERBS = ("CREATE", "PATCH", "UPDATE")
ASSIGNED = {SERVICE_LABEL: "true"}  # what the EndpointSlice controller copies from the Service
IGNORED: dict[str, str] = {}  # a Service exalb does not serve: its slice lacks that label
# The simulated nodes run at this niceness (their ExaBGP and bridges too, and each one's
# session: testbed.procs): on a real cluster they have machines of their own, and here a
# hundred of them would take the control plane's CPU. The lowest priority: each node's
# session weighs 15 against the API server's 1,024, so 100 of them weigh 1.5 API servers.
NICE = 19
SHUTDOWN_CEASE = "shutdown: every route withdrawn; Cease"  # the announcer's log, on SIGTERM
FLIP_TIMEOUT = 15.0  # seconds a readiness flip may take to reach the router's RIB
NARROWED = "EndpointSlice scope changed"  # the announcer's log line when it swaps its watch
RETRIED = "list/watch failed"  # the informer's log line for each failed list or watch
SETTLED_CORES = 0.25  # all announcers together, before a window (an eighth of this machine)
CONVERGE_TIMEOUT = 1800.0  # seconds nodes started at once may take to have every route out


def service_ip(j: int) -> str:
    return f"198.18.{j // 250}.{j % 250 + 1}"


def probe_ip(i: int) -> str:
    return f"203.0.113.{i}"


def service_nodes(j: int, nodes: int) -> list[int]:
    """The nodes (1-based) holding the ready endpoints of bulk Service ``j``."""
    return sorted({(j + k) % nodes + 1 for k in range(min(ENDPOINTS_PER_SERVICE, nodes))})


class Cluster:
    """The control plane, the router, the lab of simulated nodes and what they publish."""

    def __init__(self, work: Path, nodes: int, services: int, others: int = 0) -> None:
        self.work, self.nodes, self.services, self.others = work, nodes, services, others
        self.cp: ControlPlane = start_control_plane(work / "cp")
        self.router: GoBgp | None = None
        self.mon: RibMonitor | None = None
        self.lab: Lab | None = None
        self.running: list[int] = []
        self.other_flips = 0  # across windows: each flip changes a slice (no no-op writes)
        api = self.cp.api_client()
        # Any: dict bodies are fine for the API, the generated stubs want model objects
        self.api = api
        self.core: Any = client.CoreV1Api(api)

    def setup(self) -> dict[str, float]:
        api = self.api
        self.core.create_namespace({"metadata": {"name": NS}})
        install_crds(api)
        self.lab = Lab(
            self.cp, api, NS, self.work, lab_id=LAB_ID, exabgp_log_level="warning", nice=NICE
        )
        self.router = GoBgp(
            address=self.lab.router_ip,
            port=free_port(self.lab.router_ip),
            asn=64512,
            neighbors=self.lab.neighbors(self.nodes),
            workdir=self.work / "gobgp",
        )
        self.router.start()
        self.mon = RibMonitor(self.router)
        self.lab.add_peer("tor", self.router)
        self.lab.add_pool(BULK_POOL, ["198.18.0.0/17"])  # pods: 198.18.128.0/17
        self.lab.add_pool(PROBE_POOL, ["203.0.113.0/24"])
        for i in range(1, self.nodes + 1):
            self.lab.add_node(i, start=False)
        t = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._write_bulk_slice, range(self.services)))
            list(pool.map(self._write_other_slice, range(self.others)))
        for i in range(1, self.nodes + 1):
            self.lab.set_endpoints(f"probe-{i}", {i: True}, ASSIGNED)
        slices_s = time.monotonic() - t
        self.write_shards(vouch=False)
        # Every node's Pod and bound token now, while the API server is idle: created while
        # fifty announcers start, they met its quota admission's timeout (500).
        t = time.monotonic()
        for i in range(1, self.nodes + 1):
            self.lab.kubeconfig(i)
        return {
            "endpointslices_s": round(slices_s, 1),
            "assignment_entries": len(self.entries),
            "credentials_s": round(time.monotonic() - t, 1),
        }

    def write_shards(self, vouch: bool) -> None:
        """The assignments; with ``vouch``, as this version's allocator writes them."""
        entries = self.entries = {a.key: contract.encode(a) for a in self.assignments()}
        scope = {SCOPE_ANNOTATION: SLICE_SELECTOR} if vouch else {}
        write_shards(self.core, entries, contract.shard_count(entries), scope)

    def _write_bulk_slice(self, j: int) -> None:
        assert self.lab is not None
        nodes = service_nodes(j, self.nodes)
        self.lab.set_endpoints(f"s{j}", dict.fromkeys(nodes, True), ASSIGNED)

    def _write_other_slice(self, j: int) -> None:
        assert self.lab is not None
        self.lab.set_endpoints(
            f"other{j}", dict.fromkeys(service_nodes(j, self.nodes), True), IGNORED
        )

    def assignments(self) -> list[contract.Assignment]:
        out = [
            contract.Assignment(NS, f"s{j}", f"uid-s{j}", (service_ip(j),), BULK_POOL, "Local")
            for j in range(self.services)
        ]
        out += [
            contract.Assignment(NS, f"probe-{i}", f"uid-p{i}", (probe_ip(i),), PROBE_POOL, "Local")
            for i in range(1, self.nodes + 1)
        ]
        return out

    def expected_routes(self, i: int) -> int:
        """Routes node ``i`` announces: its bulk Services' and its probe's."""
        return 1 + sum(1 for j in range(self.services) if i in service_nodes(j, self.nodes))

    def paths(self) -> dict[str, int]:
        """Next hop -> paths the router holds from it (one next hop per node)."""
        assert self.router is not None
        out: dict[str, int] = {}
        for paths in self.router.rib().values():
            for p in paths:
                out[p.next_hop] = out.get(p.next_hop, 0) + 1
        return out

    def path_count(self) -> int:
        """Every path the router holds, as GoBGP counts them (no listing)."""
        assert self.router is not None
        return self.router.path_count()

    def wait_empty(self, timeout: float) -> float:
        """Seconds until the router holds no path at all (it may lag the processes' exits)."""
        t0 = time.monotonic()
        while held := self.path_count():
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"the router still held {held} paths")
            time.sleep(0.2)
        return round(time.monotonic() - t0, 1)

    def wait_converged(self, nodes: list[int], timeout: float) -> float:
        """Seconds until the router holds every route of ``nodes``; raises on timeout."""
        assert self.lab is not None
        assert self.router is not None
        t0 = time.monotonic()
        # Per session, by GoBGP's counters: listing a RIB of 30,000 paths every half second
        # would be most of what the machine does meanwhile.
        want = {self.lab.source(i): self.expected_routes(i) for i in nodes}
        while time.monotonic() - t0 < timeout:
            have = self.router.accepted()
            if all(have.get(src, 0) == n for src, n in want.items()):
                took = time.monotonic() - t0
                self._check_next_hops(nodes)
                return took
            time.sleep(0.5)
        have = self.router.accepted()
        short = {s: (have.get(s, 0), n) for s, n in want.items() if have.get(s, 0) != n}
        raise TimeoutError(f"not converged in {timeout} s: peer: (paths, expected) {short}")

    def _check_next_hops(self, nodes: list[int]) -> None:
        """Once converged, the RIB itself: each node's paths carry that node's next hop."""
        assert self.lab is not None
        have = self.paths()
        wrong = {
            self.lab.hop(i): (have.get(self.lab.hop(i), 0), self.expected_routes(i))
            for i in nodes
            if have.get(self.lab.hop(i), 0) != self.expected_routes(i)
        }
        if wrong:
            raise RuntimeError(f"next hop: (paths in the RIB, expected) {wrong}")

    def start(self, nodes: list[int]) -> None:
        assert self.lab is not None
        for i in nodes:
            self.lab.start_announcer(i)
        self.running += nodes

    def log_count(self, i: int, text: str) -> int:
        assert self.lab is not None
        proc = self.lab.node(i).proc
        assert proc is not None
        return proc.log.read_text(errors="replace").count(text)

    def pid(self, i: int) -> int:
        assert self.lab is not None
        proc = self.lab.node(i).proc
        assert proc is not None
        return proc.pid

    def stop_all(self) -> int:
        """SIGTERM every announcer at once (as a DaemonSet's pods are deleted), wait for all.

        One SIGTERM each, as the kubelet sends it; SIGKILL for any still running at 30 s.
        Returns how many needed the SIGKILL.
        """
        assert self.lab is not None
        procs = [p for p in (self.lab.node(i).proc for i in self.running) if p is not None]
        for p in procs:
            p.signal(15)
        deadline = time.monotonic() + 30
        killed = 0
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            killed += p.alive()
            p.stop(timeout=0)  # reaps it, and kills whatever is left in its group
        return killed

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
        if self.mon is not None:
            self.mon.stop()
        if self.router is not None:
            self.router.stop()
        self.cp.stop()


# --- the API server's side --------------------------------------------------
_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels") or ""))
        out.append((m.group("name"), labels, float(m.group("value"))))
    return out


@dataclass
class ApiSnapshot:
    at: float
    cpu_s: dict[str, float]  # process -> CPU seconds so far
    rss_mib: dict[str, float]
    watch_bytes: dict[str, float]  # resource -> bytes sent to watchers so far
    watch_events: dict[str, float]
    watches_open: float
    status_writes: float
    list_bytes: float  # EndpointSlice lists served so far (response bytes)


def snapshot(cp: ControlPlane) -> ApiSnapshot:
    pids = {name: cp.procs[name].pid for name in ("kube-apiserver", "etcd")}
    request = urllib.request.Request(
        f"{cp.url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    context = ssl.create_default_context(cafile=str(cp.ca_file))
    with urllib.request.urlopen(request, timeout=30, context=context) as r:
        text = r.read().decode()
    watch_bytes: dict[str, float] = {}
    watch_events: dict[str, float] = {}
    watches = writes = lists = 0.0
    for name, labels, value in parse_metrics(text):
        resource = labels.get("resource", "")
        if name == "apiserver_watch_events_sizes_sum":
            watch_bytes[resource] = watch_bytes.get(resource, 0.0) + value
        elif name == "apiserver_watch_events_total":
            watch_events[resource] = watch_events.get(resource, 0.0) + value
        elif (
            name == "apiserver_response_sizes_sum"
            and resource == "endpointslices"
            and labels.get("verb") == "LIST"
        ):
            lists += value
        elif name == "apiserver_longrunning_requests" and labels.get("verb") == "WATCH":
            watches += value
        elif (
            name == "apiserver_request_total"
            and resource == "bgpsessionstatuses"
            and labels.get("verb") in WRITE_VERBS
        ):
            writes += value
    return ApiSnapshot(
        time.monotonic(),
        {k: cpu_seconds(p) or 0.0 for k, p in pids.items()},
        {k: round(rss_kib(p) / 1024, 1) for k, p in pids.items()},
        watch_bytes,
        watch_events,
        watches,
        writes,
        lists,
    )


def difference(a: ApiSnapshot, b: ApiSnapshot) -> dict[str, Any]:
    span = b.at - a.at
    top = sorted(b.watch_bytes, key=lambda r: b.watch_bytes[r] - a.watch_bytes.get(r, 0.0))
    return {
        "seconds": round(span, 1),
        "cpu_cores": {k: round((b.cpu_s[k] - a.cpu_s[k]) / span, 3) for k in b.cpu_s},
        "rss_mib": b.rss_mib,
        "watch_kib_per_s": round(
            sum(b.watch_bytes.values()) / 1024 / span - sum(a.watch_bytes.values()) / 1024 / span,
            1,
        ),
        "watch_kib_per_s_by_resource": {
            r: round((b.watch_bytes[r] - a.watch_bytes.get(r, 0.0)) / 1024 / span, 1)
            for r in reversed(top[-4:])
        },
        "watch_events_per_s": round(
            (sum(b.watch_events.values()) - sum(a.watch_events.values())) / span, 1
        ),
        "endpointslice_watch_events": round(
            b.watch_events.get("endpointslices", 0.0) - a.watch_events.get("endpointslices", 0.0)
        ),
        "watches_open": b.watches_open,
        "status_writes_per_s": round((b.status_writes - a.status_writes) / span, 3),
        "endpointslice_list_mib": round((b.list_bytes - a.list_bytes) / 2**20, 1),
    }


# --- the measuring window ---------------------------------------------------
def flips(
    cluster: Cluster, seconds: float, rate: float, measure: bool
) -> tuple[list[float], list[dict[str, Any]]]:
    """Readiness flips of the running nodes' probes, paced at ``rate``; with ``measure``,
    each one's time until the router's RIB follows (seconds), and the flips it did not
    follow within ``FLIP_TIMEOUT`` (counted and named, so one does not lose the run)."""
    assert cluster.mon is not None and cluster.lab is not None
    nodes = cluster.running or list(range(1, cluster.nodes + 1))
    ready = dict.fromkeys(nodes, True)
    out: list[float] = []
    missed: list[dict[str, Any]] = []

    def follow(i: int, t0: float, timed: bool = True) -> None:
        assert cluster.mon is not None
        try:
            took = cluster.mon.wait({f"{probe_ip(i)}/32"}, ready[i], t0, FLIP_TIMEOUT)
            if timed:
                out.append(took)
        except TimeoutError:
            missed.append({"node": i, "ready": ready[i], "at": time.time()})

    end = time.monotonic() + seconds
    k = 0
    while time.monotonic() < end:
        i = nodes[k % len(nodes)]
        if cluster.others:  # a Service exalb does not serve changes as often
            n, cluster.other_flips = cluster.other_flips, cluster.other_flips + 1
            j, ready_now = n % cluster.others, (n // cluster.others) % 2 == 1
            other = dict.fromkeys(service_nodes(j, cluster.nodes), ready_now)
            cluster.lab.set_endpoints(f"other{j}", other, IGNORED)
        k += 1
        ready[i] = not ready[i]
        t0 = time.monotonic()
        cluster.lab.set_endpoints(f"probe-{i}", {i: ready[i]}, ASSIGNED)
        if measure:
            follow(i, t0)
        time.sleep(max(0.0, t0 + 1 / rate - time.monotonic()))
    for i in nodes:  # every probe ready again, as expected_routes() counts them
        if not ready[i]:
            cluster.lab.set_endpoints(f"probe-{i}", {i: True}, ASSIGNED)
            ready[i] = True
            if measure:  # waited for, not timed: the window is over
                follow(i, 0, timed=False)
    return out, missed


def announcer_cpu(cluster: Cluster) -> list[float]:
    """CPU seconds each running announcer process (not its ExaBGP) has used so far."""
    return [cpu_seconds(cluster.pid(i)) or 0.0 for i in cluster.running]


def wait_settled(cluster: Cluster) -> float:
    """Seconds until the announcers together use under ``SETTLED_CORES`` over 5 s.

    Converged is not idle: after its routes are out, each node still writes its
    status and Events and collects the garbage of its first lists. A window started
    then times readiness flips behind that backlog (100 nodes at the lowest priority
    followed none within the flip timeout).
    """
    pids = {f"announcer-{i}": cluster.pid(i) for i in cluster.running}
    return wait_quiet(pids, SETTLED_CORES, sample=5.0, timeout=900.0)


def window(cluster: Cluster, seconds: float, rate: float) -> dict[str, Any]:
    before = snapshot(cluster.cp)
    cpu_before = announcer_cpu(cluster)
    latencies, missed = flips(cluster, seconds, rate, measure=bool(cluster.running))
    cpu_after = announcer_cpu(cluster)
    out = difference(before, snapshot(cluster.cp))
    out["load_1m"] = round(os.getloadavg()[0], 2)
    if missed:
        out["flips_not_followed"] = missed
    if latencies:
        out["readiness_to_rib"] = summary_ms(latencies)
        # Per flip, not per second: how fast the window flips depends on how fast routes follow.
        out["endpointslice_events_per_flip"] = round(
            out["endpointslice_watch_events"] / (len(latencies) + len(missed)), 2
        )
    if cluster.running:
        assert cluster.lab is not None
        totals = [rss_mib(cluster.pid(i))["total"] for i in cluster.running]
        out["announcer_rss_mib"] = {
            "median": round(statistics.median(totals), 1),
            "max": max(totals),
            "sum": round(sum(totals), 1),
        }
        used = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
        out["announcer_cpu_cores"] = {
            "median": round(statistics.median(used) / out["seconds"], 4),
            "sum": round(sum(used) / out["seconds"], 3),
        }
    return out


def full_restart(cluster: Cluster) -> dict[str, Any]:
    """Every announcer stopped at once, then all started at once, as a DaemonSet restart."""
    load = round(os.getloadavg()[0], 2)
    nodes = list(cluster.running)
    said = {i: cluster.log_count(i, SHUTDOWN_CEASE) for i in nodes}
    retried = sum(cluster.log_count(i, RETRIED) for i in nodes)
    t0 = time.monotonic()
    killed = cluster.stop_all()
    stopped = time.monotonic() - t0
    left = cluster.path_count()  # SIGTERM withdraws: what the router has yet to take out
    emptied = cluster.wait_empty(120)
    ceased = sum(1 for i in nodes if cluster.log_count(i, SHUTDOWN_CEASE) > said[i])
    cluster.running = []
    api_before = snapshot(cluster.cp)
    t0 = time.monotonic()
    cluster.start(nodes)
    cluster.wait_converged(nodes, CONVERGE_TIMEOUT)
    converged = time.monotonic() - t0
    retried = sum(cluster.log_count(i, RETRIED) for i in nodes) - retried
    used = announcer_cpu(cluster)  # new processes: all they used, up to convergence
    api = difference(api_before, snapshot(cluster.cp))
    return {
        "nodes": len(nodes),
        "all_stopped_s": round(stopped, 1),
        "nodes_killed_at_30s": killed,
        "paths_left_after_stop": left,
        "router_empty_after_stop_s": emptied,
        "nodes_withdrew_then_ceased": ceased,
        "converged_s": round(converged, 1),
        "failed_lists_and_watches": retried,
        "load_1m_before": load,
        "load_1m_after": round(os.getloadavg()[0], 2),
        "announcer_cpu_s": {"median": round(statistics.median(used), 2), "sum": round(sum(used))},
        "apiserver_cpu_s": round(api["cpu_cores"]["kube-apiserver"] * api["seconds"], 1),
        "endpointslice_list_mib": api["endpointslice_list_mib"],
    }


def narrow(cluster: Cluster, timeout: float = 600) -> dict[str, Any]:
    """The shards vouch for the label: every running announcer narrows its watch, live."""
    want = cluster.path_count()
    t0 = time.monotonic()
    cluster.write_shards(vouch=True)
    fewest = want
    while time.monotonic() - t0 < timeout:
        fewest = min(fewest, cluster.path_count())
        if all(cluster.log_count(i, NARROWED) >= 1 for i in cluster.running):
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"not every announcer narrowed its watch in {timeout} s")
    took = time.monotonic() - t0
    cluster.wait_converged(cluster.running, 60)
    return {
        "narrowed_s": round(took, 1),
        "paths": want,
        "fewest_paths_meanwhile": min(fewest, cluster.path_count()),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def run(
    work: Path,
    steps: list[int],
    services: int,
    seconds: float,
    rate: float,
    progress: Callable[[str], None] = print,
    others: int = 0,
    narrowed: bool = False,
) -> dict[str, Any]:
    """The whole benchmark; the figures as a dict (see the module docstring)."""
    cluster = Cluster(work, max(steps), services, others)
    results: dict[str, Any] = {
        "nodes": max(steps),
        "services": services,
        "other_services": others,
        "steps": {},
    }
    try:
        results["setup"] = cluster.setup()
        progress(f"setup: {results['setup']}")
        time.sleep(5)  # the set-up's own writes leave the API server's watch caches
        results["steps"]["0"] = window(cluster, seconds, rate)
        progress(f"0 announcers: {json.dumps(results['steps']['0'])}")
        for n in steps:
            new = list(range(len(cluster.running) + 1, n + 1))
            t0 = time.monotonic()
            cluster.start(new)
            took = cluster.wait_converged(cluster.running, CONVERGE_TIMEOUT)
            launched = time.monotonic() - t0 - took  # the new nodes' processes
            step = {
                "started": len(new),
                "launch_s": round(launched, 1),
                "start_converged_s": round(took, 1),
                "failed_lists_and_watches": sum(cluster.log_count(i, RETRIED) for i in new),
                "load_1m_after_start": round(os.getloadavg()[0], 2),
                "settled_after_s": wait_settled(cluster),
            }
            step.update(window(cluster, seconds, rate))
            results["steps"][str(n)] = step
            progress(f"{n} announcers: {json.dumps(step)}")
        results["full_restart"] = full_restart(cluster)
        progress(f"full restart: {results['full_restart']}")
        if narrowed:
            results["narrow"] = narrow(cluster)
            progress(f"narrowed: {results['narrow']}")
            time.sleep(5)
            results["narrowed"] = window(cluster, seconds, rate)
            progress(f"{len(cluster.running)} announcers, narrowed: {results['narrowed']}")
            results["full_restart_narrowed"] = full_restart(cluster)
            progress(f"full restart, narrowed: {results['full_restart_narrowed']}")
    finally:
        cluster.close()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", default="10,30,50", help="announcers running at each step")
    ap.add_argument("--services", type=int, default=10_000, help="assigned (LoadBalancer)")
    ap.add_argument("--others", type=int, default=0, help="Services exalb does not serve")
    ap.add_argument("--narrow", action="store_true", help="then vouch for the label, again")
    ap.add_argument("--window", type=float, default=30.0, help="seconds per measuring window")
    ap.add_argument("--flip-rate", type=float, default=5.0, help="readiness flips per second")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = ap.parse_args(argv)
    # SIGTERM tears down like ^C: no announcer, router or control plane outlives the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    steps = sorted(int(s) for s in args.steps.split(","))
    work = Path(tempfile.mkdtemp(prefix="exalb-scale-bench-"))
    try:
        results = run(
            work, steps, args.services, args.window, args.flip_rate, print, args.others, args.narrow
        )
    except BaseException:
        print(f"the logs of every process are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
