"""Every metric the alerts, the dashboard and docs/ name is on a running process's /metrics.

A real allocator (as the chart's ServiceAccount) gives a LoadBalancer Service an IP from a
VIPPool; a real announcer with ExaBGP announces it to GoBGP, which shows the route. Then
both processes' /metrics are read: a name the rules, the dashboard or a document uses and
no process exposes would be an alert that never fires or a panel that stays empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testbed.allocator import AllocatorProc, apply_rbac, delete_rbac, start_allocator
from testbed.binaries import ROOT
from testbed.lab import POOL, POOL_ADDRESSES, Lab
from testbed.procs import wait_for
from tests.chart.conftest import only, template
from tests.conftest import RouterFactory
from tests.metric_names import exposed, used

pytestmark = pytest.mark.integration


@pytest.fixture
def allocator(lab: Lab, tmp_path: Path) -> Iterator[AllocatorProc]:
    suffix = f"-{lab.namespace}"
    apply_rbac(lab.api, lab.namespace, suffix)
    handle = start_allocator(lab.cp, lab.namespace, tmp_path, log_level="info")
    yield handle
    handle.proc.stop()
    delete_rbac(lab.api, suffix)


def names_used(tmp_path: Path) -> dict[str, set[str]]:
    monitoring = {"prometheusRule": {"enabled": True}}
    rule = only(template(tmp_path, {"monitoring": monitoring}), "PrometheusRule")
    dashboard = json.loads((ROOT / "charts/exalb/dashboards/exalb.json").read_text())
    return {
        "rules": {n for g in rule["spec"]["groups"] for r in g["rules"] for n in used(r["expr"])},
        "dashboard": {
            n for p in dashboard["panels"] for t in p.get("targets", []) for n in used(t["expr"])
        },
        "docs": {n for doc in (ROOT / "docs").glob("*.md") for n in used(doc.read_text())},
    }


def test_every_metric_named_in_rules_dashboard_and_docs_is_served(
    lab: Lab, router: RouterFactory, allocator: AllocatorProc, tmp_path: Path
) -> None:
    r = router("gobgp", lab.router_ip, 64512, lab.neighbors(1))
    lab.add_pool(POOL, POOL_ADDRESSES)
    lab.add_peer("tor", r)
    lab.add_node(1)
    lab.core.create_namespaced_service(
        lab.namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        },
    )
    lab.set_endpoints("web", {1: True})
    ip = ""

    def allocated() -> bool:
        nonlocal ip
        ingress = lab.core.read_namespaced_service("web", lab.namespace).status.load_balancer
        ip = (ingress.ingress or [client.V1LoadBalancerIngress(ip="")])[0].ip or ""
        return bool(ip)

    wait_for("the allocator gives web an IP", allocated, 30, interval=0.1)
    r.wait_next_hops(f"{ip}/32", {lab.hop(1)}, timeout=30)
    # ExaBGP sends its seeded routes as the session opens and tells the announcer just after
    session_line = 'exalb_announcer_bgp_session_up{peer="tor"} 1.0'
    wait_for("the announcer reports the session up", lambda: session_line in lab.metrics(1), 5)

    served = {"allocator": allocator.metrics(), "announcer": lab.metrics(1)}
    available = exposed(served["allocator"]) | exposed(served["announcer"])
    for where, names in names_used(tmp_path).items():
        assert len(names) >= 5, (where, names)
        assert names <= available, f"{where} names metrics no process serves: {names - available}"

    for text in served.values():
        assert re.search(
            r'^exalb_build_info\{python_version="[^"]+",version="[^"]+"\} 1\.0$', text, re.M
        )
        assert re.search(r"^process_resident_memory_bytes [0-9.e+]+$", text, re.M)
        assert "_created" not in text
    sessions = [line for line in served["announcer"].splitlines() if "bgp_session_up{" in line]
    assert sessions == [session_line], sessions
    assert "node=" not in served["announcer"]
    assert "exalb_allocator_is_leader 1.0" in served["allocator"]
