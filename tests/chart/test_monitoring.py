"""ServiceMonitor and PrometheusRule: behind switches, and alerting only on metrics that exist."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_dashboard_for_the_grafana_sidecar_uses_exported_metrics(tmp_path: Path) -> None:
    objs = template(tmp_path, {"monitoring": ON})
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"]["labels"]
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["exalb.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    exported = exported_names()
    for expr in exprs:
        names = used(expr)
        assert names, expr
        assert names <= exported, f"{expr} uses unknown metrics {names - exported}"


def test_service_monitor_labels_series_with_the_node(tmp_path: Path) -> None:
    monitor = only(template(tmp_path, {"monitoring": ON}), "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"} in (
        endpoint["relabelings"]
    )
