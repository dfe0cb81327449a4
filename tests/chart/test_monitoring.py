"""ServiceMonitor and PrometheusRule: behind switches, and alerting only on metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from allocator.metrics import AllocatorMetrics
from announcer.metrics import Metrics
from tests.chart.conftest import NS, containers, only, template

ON = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}


def exported_names() -> set[str]:
    names = set()
    for registry in (AllocatorMetrics().registry, Metrics().registry):
        assert isinstance(registry, CollectorRegistry)
        for family in registry.collect():
            names.add(family.name)
            names |= {s.name for s in family.samples}
    return names


def test_off_by_default(tmp_path: Path) -> None:
    kinds = {o["kind"] for o in template(tmp_path)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "Service"}


def test_rules_use_metrics_the_processes_export(tmp_path: Path) -> None:
    rule = only(template(tmp_path, {"monitoring": ON}), "PrometheusRule")
    rules = rule["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {
        "ExalbBGPSessionDown",
        "ExalbNoAllocatorLeader",
        "ExalbServicesWithoutIP",
    }
    exported = exported_names()
    for r in rules:
        used = set(re.findall(r"\bexalb_[a-z_]+", r["expr"]))
        assert used, r["expr"]
        assert used <= exported, f"{r['alert']} uses unknown metrics {used - exported}"
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
