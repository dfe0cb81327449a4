"""Announce after the data path answers (issue 13): the decision on probe results.

Properties, over any sequence of probe results for a Service whose advertisements ask
for the check: it is never announced without a passing latest probe; a failing
re-check withdraws it at once; after a failure it is announced again only after RISE
passes in a row, so a target that alternates is never re-announced; a pass goes stale.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.datapath import (
    DATA_PATH_FAILING,
    DATA_PATH_NO_TARGET,
    DATA_PATH_RECOVERING,
    DATA_PATH_UNCHECKED,
    RISE,
    CheckState,
    DataPathChecks,
    Probe,
    check_reason,
    expire,
    record,
)
from announcer.core.decide import context, decide_service
from announcer.core.explain import explain
from announcer.core.model import Endpoint, Node, Options
from announcer.core.pools import pool_space
from announcer.core.report import MAX_PASSING_LISTED, decision_report, report_from
from exalb.assignments import Advertisement, Assignment, DataPathCheck, DataPathTarget
from exalb.bgppeer import Peer

OPTS = Options(node_name="n1")
POOLS = {"pool": pool_space({"addresses": ["198.51.100.0/24"]})}
NODE = Node("n1", addresses=(("InternalIP", "192.0.2.11"),))
PEER = Peer("tor", 64513, 64512, "127.1.0.1")
TARGET = DataPathTarget("198.19.0.12", 80)
CHECKED = Advertisement(data_path_check=DataPathCheck())
SVC = Assignment("ns", "web", "u", ("198.51.100.1",), "pool", advertisements=(CHECKED,))
SVC = replace(SVC, data_path=TARGET)
EPS = [Endpoint("n2")]
CTX = context(NODE, [PEER], OPTS, 0, POOLS)


def probe(ok: bool, at: float = 100.0, target: str = str(TARGET)) -> Probe:
    return Probe(target, ok, "connected after 0.002 s" if ok else "refused after 0.001 s", at)


def announced(check: CheckState | None, a: Assignment = SVC) -> bool:
    return bool(decide_service(CTX, a, EPS, check).routes)


def test_a_first_pass_announces_at_once() -> None:
    assert decide_service(CTX, SVC, EPS, None).reason == DATA_PATH_UNCHECKED
    assert not announced(None)
    assert announced(record(None, probe(True)))


def test_a_failure_withdraws_and_two_passes_in_a_row_announce_again() -> None:
    state = record(record(None, probe(True)), probe(False))
    assert check_reason(TARGET, state) == DATA_PATH_FAILING
    state = record(state, probe(True))
    assert check_reason(TARGET, state) == DATA_PATH_RECOVERING
    assert not announced(state)
    state = record(state, probe(True))
    assert state.passes == RISE and announced(state)


def test_a_pass_on_another_target_does_not_count() -> None:
    other = record(None, probe(True, target="198.19.0.12:8080"))
    assert check_reason(TARGET, other) == DATA_PATH_UNCHECKED
    assert record(other, probe(True)).passes == 1  # the count starts again


def test_no_target_is_never_announced_and_says_why() -> None:
    broken = replace(SVC, data_path=DataPathTarget(problem="the Service has no TCP port"))
    passing = record(None, probe(True))
    assert decide_service(CTX, broken, EPS, passing).reason == DATA_PATH_NO_TARGET
    v = explain(NODE, [PEER], OPTS, 0, POOLS, broken, EPS, check=passing)
    assert not v.announced and "no TCP port" in v.evidence


def test_endpoints_are_checked_first() -> None:
    assert decide_service(CTX, SVC, [], record(None, probe(False))).reason == "noEndpoints"


def test_only_the_advertisements_asking_for_it_wait() -> None:
    both = replace(SVC, advertisements=(CHECKED, Advertisement(communities=("64512:7",))))
    d = decide_service(CTX, both, EPS, record(None, probe(False)))
    assert d.reason == DATA_PATH_FAILING  # reported, while the other advertisement announces
    assert d.routes["tor"]["198.51.100.1/32"].communities == ("64512:7",)
    unchecked = replace(SVC, advertisements=(Advertisement(),), data_path=None)
    assert announced(None, unchecked)


def test_a_stale_pass_is_a_failure() -> None:
    state = record(None, probe(True, at=100.0))
    assert expire(state, 130.0, 35.0) is state
    aged = expire(state, 136.0, 35.0)
    assert check_reason(TARGET, aged) == DATA_PATH_FAILING
    assert "no result for 36 s" in aged.last.detail
    checks = DataPathChecks(35.0)
    checks.record("ns.web", probe(True, at=100.0))
    assert checks.next_expiry() == 135.0
    assert checks.expire(134.0) == set()
    assert checks.expire(136.0) == {"ns.web"}
    assert checks.next_expiry() is None


def test_the_store_reports_only_verdict_changes_and_forgets_removed_services() -> None:
    checks = DataPathChecks(35.0)
    assert checks.record("ns.web", probe(True, 1))
    assert not checks.record("ns.web", probe(True, 2))  # still passing: nothing to re-decide
    assert checks.record("ns.web", probe(False, 3))
    assert not checks.record("ns.web", probe(False, 4))
    assert checks.record("ns.web", probe(True, 5))  # failing -> recovering
    assert checks.record("ns.web", probe(True, 6))  # recovering -> passing
    checks.retain([])
    assert checks.states == {}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=40))
def test_announced_only_on_a_passing_latest_probe_and_never_flapping(results: list[bool]) -> None:
    state: CheckState | None = None
    was = False
    passes_in_row = 0
    failed_before = False
    for i, ok in enumerate(results):
        state = record(state, probe(ok, at=float(i)))
        now = announced(state)
        passes_in_row = passes_in_row + 1 if ok else 0
        if now:  # never announced without a passing latest probe
            assert state.last.ok
        if not ok:  # a failing re-check withdraws
            assert not now
        if now and not was and failed_before:  # hysteresis: RISE passes after a failure
            assert passes_in_row >= RISE
        if ok and not failed_before:  # the first pass needs no wait
            assert now
        failed_before = failed_before or not ok
        was = now


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30))
def test_an_alternating_target_is_announced_at_most_once(n: int) -> None:
    state: CheckState | None = None
    announces, was = 0, False
    for i in range(n):
        state = record(state, probe(i % 2 == 0, at=float(i)))
        now = announced(state)
        announces += now and not was
        was = now
    assert announces <= 1


def test_the_report_carries_the_states_and_leaves_out_passing_ones_beyond_the_cap() -> None:
    failing = record(None, probe(False))
    passing = record(None, probe(True))
    checks = {"ns.bad": failing} | {f"ns.ok{i}": passing for i in range(MAX_PASSING_LISTED + 3)}
    raw = decision_report(CTX, OPTS, (), "", None, checks)
    assert len(raw["dataPath"]) == MAX_PASSING_LISTED + 1
    assert raw["dataPath"][0]["service"] == "ns.bad"
    assert raw["dataPathPassingOmitted"] == 3
    back = report_from("n1", raw)
    assert back is not None
    assert back.checks["ns.bad"] == failing
    assert back.checks["ns.ok0"] == passing
    assert back.passing_omitted == 3


def test_explain_gives_the_probe_as_evidence() -> None:
    v = explain(NODE, [PEER], OPTS, 0, POOLS, SVC, EPS, check=record(None, probe(False)))
    assert v.reason == DATA_PATH_FAILING
    assert v.evidence == "connect 198.19.0.12:80 refused after 0.001 s at 1970-01-01T00:01:40Z"
    v = explain(NODE, [PEER], OPTS, 0, POOLS, SVC, EPS, check=record(None, probe(True)))
    assert v.announced and "data path: connect 198.19.0.12:80 connected" in v.evidence
    v = explain(NODE, [PEER], OPTS, 0, POOLS, SVC, EPS)
    assert v.evidence == "no connect to 198.19.0.12:80 has ended on this node yet"
