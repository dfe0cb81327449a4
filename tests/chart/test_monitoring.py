"""ServiceMonitor and PrometheusRule: behind switches, and alerting only on metrics that exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from allocator.metrics import AllocatorMetrics
from announcer.metrics import Metrics
from tests.chart.conftest import NS, containers, only, template
from tests.metric_names import exposed, used

ON = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
}


def exported_names() -> set[str]:
    names: set[str] = set()
    for registry in (AllocatorMetrics().registry, Metrics().registry):
        names |= exposed(generate_latest(registry).decode())
    return names


def test_off_by_default(tmp_path: Path) -> None:
    kinds = {o["kind"] for o in template(tmp_path)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "Service", "ConfigMap"}


def test_rules_use_metrics_the_processes_export(tmp_path: Path) -> None:
    rule = only(template(tmp_path, {"monitoring": ON}), "PrometheusRule")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {r["alert"] for r in rules} == {
        "ExalbBGPSessionDown",
        "ExalbNodeWithoutBGPSession",
        "ExalbAssignmentsStale",
        "ExalbExaBGPRestarting",
        "ExalbNoAllocatorLeader",
        "ExalbPoolUsageHigh",
        "ExalbPoolUsageCritical",
        "ExalbAllocationFailures",
        "ExalbServicesWithoutIP",
    }
    exported = exported_names()
    for r in rules:
        names = used(r["expr"])
        assert names, r["expr"]
        assert names <= exported, f"{r['alert']} uses unknown metrics {names - exported}"
        assert f'namespace="{NS}"' in r["expr"]


@pytest.mark.parametrize("mode", ["sidecar", "deployment"])
def test_metrics_services_reach_each_process(tmp_path: Path, mode: str) -> None:
    objs = template(tmp_path, {"monitoring": ON, "allocator": {"mode": mode}})
    monitor = only(objs, "ServiceMonitor")
    services = [o for o in objs if o["kind"] == "Service"]
    assert len(services) == 2
    for svc in services:
        labels = svc["metadata"]["labels"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
        (port,) = svc["spec"]["ports"]
        assert port["name"] == monitor["spec"]["endpoints"][0]["port"]
        # the pods the Service selects declare the port it targets
        targets = []
        for workload, c in containers(objs):
            pod_labels = workload["spec"]["template"]["metadata"]["labels"]
            if svc["spec"]["selector"].items() <= pod_labels.items():
                targets += [p for p in c["ports"] if p["name"] == port["targetPort"]]
        assert [p["containerPort"] for p in targets] == [port["port"]]


def dashboard_of(tmp_path: Path) -> dict[str, Any]:
    objs = template(tmp_path, {"monitoring": ON})
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    return dict(json.loads(cm["data"]["exalb.json"]))


def test_every_panel_and_variable_queries_exported_metrics(tmp_path: Path) -> None:
    dashboard = dashboard_of(tmp_path)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert all(p["targets"] for p in panels), "a panel without a query"
    assert len(exprs) > 20
    exported = exported_names()
    for expr in exprs:
        names = used(expr)
        assert names, expr
        assert names <= exported, f"{expr} uses unknown metrics {names - exported}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_per_session_panels_show_each_node_and_peer(tmp_path: Path) -> None:
    """State, prefixes, hold time, BFD and the last NOTIFICATION per session, filtered by
    the dashboard's node and peer variables and kept apart by both labels."""
    panels = dashboard_of(tmp_path)["panels"]
    row = next(i for i, p in enumerate(panels) if p["title"] == "Sessions per node and peer")
    end = next(i for i, p in enumerate(panels) if i > row and p["type"] == "row")
    session_panels = panels[row + 1 : end]
    names = {n for p in session_panels for t in p["targets"] for n in used(t["expr"])}
    assert {
        "exalb_announcer_bgp_session_state",
        "exalb_announcer_bgp_session_state_change_timestamp_seconds",
        "exalb_announcer_bgp_announced_prefixes",
        "exalb_announcer_bgp_negotiated_hold_time_seconds",
        "exalb_announcer_bfd_session_up",
        "exalb_announcer_bgp_last_notification_info",
        "exalb_announcer_bgp_notifications_total",
    } <= names
    for p in session_panels:
        for t in p["targets"]:
            assert 'node=~"$node"' in t["expr"] and 'peer=~"$peer"' in t["expr"], t["expr"]
            assert "by (node, peer" in t["expr"], t["expr"]


def test_service_monitor_labels_series_with_the_node(tmp_path: Path) -> None:
    monitor = only(template(tmp_path, {"monitoring": ON}), "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} in (
        endpoint["relabelings"]
    )
