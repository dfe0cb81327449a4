"""The PrometheusRule checked and unit-tested by Prometheus's own promtool.

The chart is rendered with the real helm, its rule groups written to rules.yaml beside
alerts_test.yaml, then ``promtool check rules`` (syntax, PromQL, templates) and
``promtool test rules`` (each alert fires when it should and stays silent when it should
not) run on them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from testbed.binaries import find
from tests.chart.conftest import only, template

CASES = Path(__file__).with_name("alerts_test.yaml")


def promtool(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [find("promtool"), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def rendered_groups(tmp_path: Path) -> list[dict[str, Any]]:
    rule = only(
        template(tmp_path, {"monitoring": {"prometheusRule": {"enabled": True}}}), "PrometheusRule"
    )
    return list(rule["spec"]["groups"])


def test_promtool_checks_and_unit_tests_the_rules(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rendered_groups(tmp_path)}))
    shutil.copy(CASES, tmp_path / CASES.name)
    checked = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert "SUCCESS" in checked
    tested = promtool("test", "rules", CASES.name, cwd=tmp_path)
    assert "SUCCESS" in tested


def test_every_alert_has_a_case_where_it_fires(tmp_path: Path) -> None:
    alerts = {r["alert"] for g in rendered_groups(tmp_path) for r in g["rules"]}
    firing = {
        t["alertname"]
        for case in yaml.safe_load(CASES.read_text())["tests"]
        for t in case["alert_rule_test"]
        if t["exp_alerts"]
    }
    assert alerts == firing
