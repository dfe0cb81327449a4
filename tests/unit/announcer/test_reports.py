"""Refusals and stale shards are reported once per change: log, metric, Event."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from announcer.core.pools import DEFAULT_ROUTE, IP_OUTSIDE_POOL, Refusal
from announcer.metrics import Metrics
from announcer.reports import EVENT_REASON, ContractReports
from exalb.assignments import Assignment
from exalb.kube.events import ObjectRef

ZERO = Refusal("198.51.100.1/0", DEFAULT_ROUTE, "198.51.100.1/0 is a default route")
OUTSIDE = Refusal("203.0.113.200/32", IP_OUTSIDE_POOL, "203.0.113.200 is not in VIPPool 'p'")
A = Assignment("ns", "zero", "uid-zero", ("198.51.100.1",), "p")


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[ObjectRef, str, str, str]] = []

    def record(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.recorded.append((ref, type_, reason, message))


def gauge(m: Metrics, name: str, **labels: str) -> float:
    value = m.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_a_refusal_is_reported_once_until_it_changes() -> None:
    m, events = Metrics(), Events()
    reports = ContractReports(m, events, structlog.get_logger("test"))
    lookup = {A.key: A}.get
    with capture_logs() as logs:
        for _ in range(3):
            reports.refused({A.key: (ZERO,)}, lookup)
    assert [e["service"] for e in logs if e["event"].startswith("prefix refused")] == [A.key]
    assert events.recorded == [
        (ObjectRef("Service", "ns", "zero", "uid-zero"), "Warning", EVENT_REASON, ZERO.message)
    ]
    assert gauge(m, "exalb_announcer_unjustified_prefixes", reason=DEFAULT_ROUTE) == 1.0
    assert gauge(m, "exalb_announcer_unjustified_prefixes", reason=IP_OUTSIDE_POOL) == 0.0

    reports.refused({A.key: (OUTSIDE,)}, lookup)
    assert len(events.recorded) == 2
    assert gauge(m, "exalb_announcer_unjustified_prefixes", reason=DEFAULT_ROUTE) == 0.0
    assert gauge(m, "exalb_announcer_unjustified_prefixes", reason=IP_OUTSIDE_POOL) == 1.0
    reports.refused({}, lookup)
    assert gauge(m, "exalb_announcer_unjustified_prefixes", reason=IP_OUTSIDE_POOL) == 0.0


def test_a_stale_shard_is_flagged_and_logged_once() -> None:
    m = Metrics()
    reports = ContractReports(m, None, structlog.get_logger("test"))
    with capture_logs() as logs:
        reports.stale({"ns/exalb-assignments-0": "deleted"})
        reports.stale({"ns/exalb-assignments-0": "deleted"})
        assert gauge(m, "exalb_announcer_assignments_stale") == 1.0
        reports.stale({})
    assert [e["log_level"] for e in logs] == ["error", "info"]
    assert gauge(m, "exalb_announcer_assignments_stale") == 0.0


def test_an_unusable_peer_is_logged_once_per_change_and_its_metric_dropped_when_deleted() -> None:
    m = Metrics()
    reports = ContractReports(m, None, structlog.get_logger("test"))
    missing = "passwordSecret 'tor-md5' is missing from namespace 'bgp' or has no 'password' key"
    passes = [{"tor": missing}, {"tor": missing}, {}, {"tor": missing}]
    logged = []
    for problems in passes:
        with capture_logs() as logs:
            reports.peers(problems, ["tor", "other"])
        logged.append([(e["log_level"], e["peer"], e.get("error")) for e in logs])
        assert gauge(m, "exalb_announcer_peer_problem", peer="other") == 0.0
    assert logged == [
        [("error", "tor", missing)],  # the reason names the Secret and its namespace
        [],  # the same problem on the next pass: not repeated
        [("info", "tor", None)],  # usable again
        [("error", "tor", missing)],
    ]
    assert gauge(m, "exalb_announcer_peer_problem", peer="tor") == 1.0
    reports.peers({}, ["other"])
    assert m.registry.get_sample_value("exalb_announcer_peer_problem", {"peer": "tor"}) is None
