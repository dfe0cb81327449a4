"""The informer's mirror against a scripted ListWatch: what it shows and whom it tells.

Resource versions here are deliberately not ordered as numbers ("b7" after "a9"): the
mirror must never compare them, only match them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exalb.kube.informer import CALM, FIRST_RETRY, Informer, RetrySchedule, retry_delay

Obj = dict[str, Any]


def svc(rv: str, ip: str = "") -> Obj:
    return {"metadata": {"name": "s", "namespace": "n", "resourceVersion": rv}, "ip": ip}


class Stream:
    def __init__(self, events: list[Obj]) -> None:
        self.events = events
        self.closed = False

    def __iter__(self) -> Iterator[Obj]:
        return iter(self.events)

    def abort(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Script:
    """A ListWatch: one list page, then one watch per script entry."""

    def __init__(self, items: list[Obj], watches: list[list[Obj]]) -> None:
        self.items = items
        self.watches = watches
        self.watched_from: list[str] = []

    def list(self, limit: int, continue_token: str | None = None) -> Obj:
        return {"kind": "ServiceList", "metadata": {"resourceVersion": "L1"}, "items": self.items}

    def watch(self, resource_version: str, timeout_seconds: int) -> Stream:
        self.watched_from.append(resource_version)
        return Stream(self.watches.pop(0))


def modified(obj: Obj) -> Obj:
    return {"type": "MODIFIED", "object": obj}


def run(items: list[Obj], watches: list[list[Obj]]) -> tuple[Informer, Script, list[Any]]:
    told: list[Any] = []
    script = Script(items, watches)
    inf = Informer(
        "t", script, lambda k, o: told.append((k, o and o["metadata"]["resourceVersion"]))
    )
    inf._relist()
    return inf, script, told


def test_a_write_stays_shown_until_the_watch_delivers_it_and_older_events_are_ignored() -> None:
    inf, script, told = run(
        [svc("a1")], [[modified(svc("x5", "old")), modified(svc("b7", "ours"))]]
    )
    told.clear()
    inf.observe(svc("b7", "ours"), notify=False)  # our write's response
    inf._watch()  # an older event, then our own
    assert inf.get("n/s") == svc("b7", "ours")
    assert told == []  # nothing news to the consumer
    assert script.watched_from == ["L1"]


@pytest.mark.parametrize(
    "watch_was_faster",
    [False, True],
    ids=["write reported first", "watch delivered the write before it was reported"],
)
def test_events_after_the_write_are_applied(watch_was_faster: bool) -> None:
    ours, theirs = modified(svc("b7")), modified(svc("c2", "theirs"))
    inf, _, told = run([svc("a1")], [[ours], [theirs]] if watch_was_faster else [[ours, theirs]])
    if watch_was_faster:
        inf._watch()
    inf.observe(svc("b7"), notify=False)
    told.clear()
    inf._watch()
    assert inf.get("n/s") == svc("c2", "theirs")  # the key is never frozen on our write
    assert told == [("n/s", "c2")]


def test_a_relist_is_the_apis_word_over_any_write() -> None:
    inf, script, told = run([svc("a1")], [])
    inf.observe(svc("b7", "ours"), notify=False)
    script.items = [svc("z0", "listed")]
    told.clear()
    inf._relist()
    assert (inf.get("n/s") or {})["ip"] == "listed"
    assert told == [("n/s", "z0")]


def test_deletion_is_applied_even_while_a_write_is_ahead() -> None:
    inf, _, told = run([svc("a1")], [[{"type": "DELETED", "object": svc("d3")}]])
    inf.observe(svc("b7"), notify=False)
    told.clear()
    inf._watch()
    assert inf.get("n/s") is None
    assert told == [("n/s", None)]


@given(failures=st.integers(1, 10_000), ceiling=st.floats(0.2, 600))
def test_a_retry_waits_between_half_and_all_of_its_doubled_step_never_over_the_ceiling(
    failures: int, ceiling: float
) -> None:
    step = min(FIRST_RETRY * 2 ** min(failures - 1, 30), ceiling)
    assert step / 2 <= retry_delay(failures, ceiling) <= step <= ceiling


def test_retries_spread_out_and_reach_the_ceiling() -> None:
    first = [retry_delay(1, 30.0) for _ in range(200)]
    late = [retry_delay(12, 30.0) for _ in range(200)]
    assert max(first) <= FIRST_RETRY  # a dropped watch comes back at once
    assert min(late) >= 15.0  # a long outage is not retried faster than every 15 s
    assert len({round(d, 3) for d in late}) > 150  # not every node at the same instant


def test_failures_in_a_row_climb_to_the_ceiling_and_a_calm_spell_or_a_success_starts_over() -> None:
    retries = RetrySchedule(30.0)
    for t in range(12):  # an outage: one failure a second
        delay = retries.failed(float(t))
    assert retries.failures == 12 and delay >= 15.0
    # A watch that ran longer than CALM before it broke is back at once, not after 30 s.
    assert retries.failed(11.0 + CALM + 1) <= FIRST_RETRY
    assert retries.failures == 1
    retries.failed(200.0)
    retries.succeeded()
    assert retries.failed(201.0) <= FIRST_RETRY
