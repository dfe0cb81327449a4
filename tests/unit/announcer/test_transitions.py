"""``core.transitions``: at most one told change per Service per interval, the last one true."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.transitions import ChangeLimiter

INTERVAL = 3.0


def test_a_change_is_told_at_once_then_held_until_the_interval_ends() -> None:
    lim = ChangeLimiter(INTERVAL, burst=20, now=0.0)
    lim.observe("ns.web", True, None)
    assert [(c.key, c.announced) for c in lim.due(1.0).told] == [("ns.web", True)]
    lim.observe("ns.web", False, "noLocalEndpoints")
    assert lim.due(2.0).told == []
    assert lim.next_due() == 4.0
    (change,) = lim.due(4.0).told
    assert (change.announced, change.reason) == (False, "noLocalEndpoints")
    assert lim.next_due() is None


def test_a_flip_and_its_flip_back_tell_nothing() -> None:
    lim = ChangeLimiter(INTERVAL, burst=20, now=0.0)
    lim.observe("ns.web", True, None)
    lim.due(1.0)
    lim.observe("ns.web", False, "noEndpoints")
    lim.observe("ns.web", True, None)
    assert lim.next_due() is None and lim.due(10.0).told == []


def test_a_new_service_not_announced_and_a_gone_one_tell_nothing() -> None:
    lim = ChangeLimiter(INTERVAL, burst=20, now=0.0)
    lim.observe("ns.new", False, "noEndpoints")
    lim.observe("ns.web", True, None)
    lim.observe("ns.web", None, None)  # its assignment is gone before it was told
    assert lim.due(1.0).told == [] and lim.tracked() == set()


def test_more_changes_at_once_than_the_burst_are_silenced() -> None:
    lim = ChangeLimiter(INTERVAL, burst=2, now=0.0)
    for i in range(3):
        lim.observe(f"ns.s{i}", True, None)
    due = lim.due(5.0)
    assert due.told == [] and len(due.silenced) == 3
    assert lim.silenced_at == 5.0
    lim.observe("ns.s0", False, "nodeNotReady")  # each is now told as announced
    assert [c.key for c in lim.due(9.0).told] == ["ns.s0"]


@given(
    steps=st.lists(
        st.tuples(st.floats(0.0, 2.0), st.booleans()),  # (seconds later, announced now)
        min_size=1,
        max_size=30,
    )
)
def test_told_changes_are_an_interval_apart_and_the_last_is_the_state(
    steps: list[tuple[float, bool]],
) -> None:
    lim = ChangeLimiter(INTERVAL, burst=20, now=0.0)
    now, told = 0.0, []
    state = False
    for later, state in steps:
        now += later
        lim.observe("ns.web", state, None if state else "noEndpoints")
        told += [(now, c.announced) for c in lim.due(now).told]
    # Time passes: anything held back is told when it is due.
    wake = lim.next_due()
    if wake is not None:
        now = max(now, wake)
        told += [(now, c.announced) for c in lim.due(now).told]
    assert lim.next_due() is None
    times = [t for t, _ in told]
    assert all(b - a >= INTERVAL - 1e-9 for a, b in itertools.pairwise(times))  # float sums
    assert (told[-1][1] if told else False) == state
    # Consecutive tells differ: nothing is told twice in a row.
    assert all(a[1] != b[1] for a, b in itertools.pairwise(told))
