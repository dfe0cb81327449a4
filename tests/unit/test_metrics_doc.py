"""docs/metrics.md lists exactly the metrics the allocator and the announcer export."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from allocator.metrics import AllocatorMetrics
from announcer.metrics import Metrics
from testbed.binaries import ROOT

DOC = ROOT / "docs" / "metrics.md"


def family_names() -> set[str]:
    names: set[str] = set()
    for registry in (AllocatorMetrics().registry, Metrics().registry):
        text = generate_latest(registry).decode()
        names |= set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    return names


def documented() -> set[str]:
    """The metric in the first cell of every table row."""
    return set(
        re.findall(r"^\| `((?:exalb|process)_[a-z0-9_]+)` \|", DOC.read_text(), re.MULTILINE)
    )


def test_the_reference_lists_every_exported_metric_and_nothing_else() -> None:
    exported = family_names()
    assert len(exported) > 30
    assert documented() == exported


def test_names_follow_prometheus_conventions() -> None:
    for registry in (AllocatorMetrics().registry, Metrics().registry):
        for family in registry.collect():
            name = family.name
            assert name.startswith(
                ("exalb_allocator_", "exalb_announcer_", "exalb_build_info", "process_")
            )
            if family.type == "counter":
                continue  # the exposition adds _total; the reference test checks it is there
            assert not name.endswith(("_total", "_count", "_errors", "_restarts")), name
            # a duration measured is a histogram; a gauge in seconds is a timestamp or a setting
            if family.type == "histogram" or "duration" in name:
                assert family.type == "histogram" and name.endswith("_seconds"), name
            elif name.endswith("_seconds") and not name.startswith("process_"):
                assert name.endswith(("_timestamp_seconds", "_hold_time_seconds")), name
            labels = {label for s in family.samples for label in s.labels}
            assert "node" not in labels, name
