"""Announce after the data path answers (issue 13), on real nodes: kube-proxy stopped on one.

The pool's advertisement asks for ``dataPathCheck``. With kube-proxy stopped on the first
node, a Service created then has no rules there: that node must never announce it (FRR
shows only the other node's path, sampled throughout), must say why (its
BGPSessionStatus and ``exalbctl explain``), and must announce it once kube-proxy runs
again. A client sends requests to the address all along and counts failures.

The same node also shows why the check connects to the ClusterIP and not to the
load-balancer IP: from the node without rules, a connect to the load-balancer IP is
answered anyway, through the router and the other node's kube-proxy (a false pass),
while a connect to the ClusterIP fails.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from testbed import dualstack, netns
from testbed.node import Node
from testbed.nodes import PODS, Bed
from testbed.procs import wait_for
from testbed.traffic import client

from .chart import SYSTEM, explain, pods_by_node, service, wait_established, wait_next_hops
from .scenarios import entry_node, route_log
from .workloads import web

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

CONNECT = """
import socket, sys, time
t0 = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    how = "connected"
except OSError as exc:
    how = type(exc).__name__
print(f"{how} after {time.monotonic() - t0:.3f} s")
"""


def connect_from(node: Node, address: str, port: int = 80) -> str:
    """A TCP connect from the node's network namespace, where the announcer's prober runs."""
    return netns.run(node.netns, [sys.executable, "-c", CONNECT, address, str(port)]).strip()


def cluster_ip(bed: Bed, namespace: str, name: str) -> str:
    return bed.kubectl("get", "service", "-n", namespace, name, "-o", "jsonpath={.spec.clusterIP}")


def reported_check(bed: Bed, node: str, key: str) -> dict[str, object] | None:
    """The node's own report of its data path check of ``key`` (its BGPSessionStatus)."""
    raw = bed.kubectl("get", "bgpsessionstatus", "-n", SYSTEM, node, "-o", "json")
    checks = json.loads(raw)["status"].get("decision", {}).get("dataPath", [])
    return next((c for c in checks if c["service"] == key), None)


def announced_by(bed: Bed, namespace: str, name: str) -> set[str]:
    """The nodes whose announcer wrote an Announced Event on the Service."""
    raw = bed.kubectl(
        "get", "events", "-n", namespace, "-o", "json",
        f"--field-selector=involvedObject.name={name},reason=Announced",
    )  # fmt: skip
    return {str((e.get("source") or {}).get("host", "")) for e in json.loads(raw)["items"]}


def test_a_node_without_kube_proxy_does_not_announce_says_why_and_announces_once_it_runs(
    exalb: Bed, namespace: str
) -> None:
    wait_established(exalb)
    stopped, running = exalb.nodes
    both = {stopped.address, running.address}
    web(exalb, namespace, replicas=2)
    pods_by_node(exalb, namespace, 2)
    exalb.kubectl(
        "patch", "vippool", "test", "-n", SYSTEM, "--type=merge",
        "-p", json.dumps({"spec": {"bgpAdvertisements": [{"dataPathCheck": {}}]}}),
    )  # fmt: skip
    # With kube-proxy everywhere, a checked Service is announced by both nodes.
    t0 = time.time()
    before = service(exalb, namespace, "checked-before", "Cluster")
    wait_next_hops(exalb, before, both, timeout=60)
    print(f"\nchecked Service, kube-proxy everywhere: both nodes announce +{time.time() - t0:.2f}s")

    proxy = stopped.procs.pop("kube-proxy")
    proxy.stop()
    try:
        prefix = service(exalb, namespace, "web-checked", "Cluster")
        vip = prefix.removesuffix("/32")
        wait_next_hops(exalb, prefix, {running.address}, timeout=60)
        address = cluster_ip(exalb, namespace, "web-checked")
        via_cluster_ip = connect_from(stopped, address)
        via_vip = connect_from(stopped, vip)
        print(f"from {stopped.name} without kube-proxy: ClusterIP {address}:80 {via_cluster_ip}")
        print(f"from {stopped.name} without kube-proxy: load-balancer IP {vip}:80 {via_vip}")
        assert not via_cluster_ip.startswith("connected"), via_cluster_ip
        assert via_vip.startswith("connected"), "the false pass a VIP probe would give"

        path = exalb.workdir / "traffic" / "data-path-check.jsonl"
        path.parent.mkdir(exist_ok=True)
        bounds = {"interval": 0.1, "timeout": 2.0, "count": 3000, "duration": 200}
        with (
            client(exalb.ns("client"), vip, path, **bounds) as c,
            route_log(exalb, prefix) as changes,
        ):
            c.wait_until("20 answers", lambda rs: sum(r.ok for r in rs) >= 20, timeout=30)
            held_until = time.time() + 15
            wait_for(
                f"{stopped.name}'s failing check in its BGPSessionStatus",
                lambda: (
                    (reported_check(exalb, stopped.name, f"{namespace}.web-checked") or {}).get(
                        "ok"
                    )
                    is False
                ),
                timeout=30,
                interval=0.5,
            )
            report = reported_check(exalb, stopped.name, f"{namespace}.web-checked")
            print(f"{stopped.name} reports: {report}")
            assert report is not None and report["target"] == f"{address}:80"
            said = explain(exalb, f"{namespace}/web-checked")
            print(f"exalbctl explain: {said}")
            assert "dataPathFailing" in said and f"connect {address}:80" in said
            time.sleep(max(0.0, held_until - time.time()))
            withheld = [hops for _, hops in changes]  # the router kernel's, at each change
            assert withheld == [{running.address}], withheld
            # From the Service's creation on, not only while sampled: its announcer told no
            # announcement (a node's first change on a Service is told at once).
            assert stopped.name not in announced_by(exalb, namespace, "web-checked")

            started = time.time()
            stopped.start_proxy(f"{PODS},{dualstack.PODS_V6}")
            wait_for(
                f"the ClusterIP answering from {stopped.name}",
                lambda: connect_from(stopped, address).startswith("connected"),
                timeout=60,
                interval=0.2,
            )
            synced = time.time()
            wait_next_hops(exalb, prefix, both, timeout=60)
            announced = time.time()
            c.wait_until("3 s after the announcement", lambda rs: rs[-1].start > announced + 3, 15)
        records = c.records()
    finally:
        if "kube-proxy" not in stopped.procs:
            stopped.start_proxy(f"{PODS},{dualstack.PODS_V6}")
    failed = [r for r in records if not r.ok]
    entered = {n.name: 0 for n in exalb.nodes}
    for r in records:
        if r.ok and r.start < started:
            entered[entry_node(exalb, r.peer)] += 1
    after = sum(
        1
        for r in records
        if r.ok and r.start > announced + 0.5 and entry_node(exalb, r.peer) == stopped.name
    )
    load = os.getloadavg()
    print(
        f"kube-proxy started → ClusterIP answers from {stopped.name} +{synced - started:.2f}s, "
        f"→ FRR has its path +{announced - started:.2f}s "
        f"(+{announced - synced:.2f}s after the sync)"
    )
    print(
        f"requests {len(records)}, failed {len(failed)}; answered before the restart, by entry "
        f"node: {entered}; through {stopped.name} after its announcement: {after}; "
        f"the router's kernel route meanwhile: {running.address} only; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    assert failed == [], failed[:5]
    assert entered[stopped.name] == 0
    assert after > 0, "the stopped node carries traffic once it announces"
