"""The restart policy: immediate after a lone exit, doubling back-off in a crash loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.restart import RestartBackoff


def test_a_first_exit_restarts_at_once() -> None:
    assert RestartBackoff().after_exit(1000.0) == 0.0


def test_repeated_exits_within_the_window_back_off_doubling_to_the_cap() -> None:
    policy = RestartBackoff(base=0.5, cap=4.0, window=60.0)
    waits = [policy.after_exit(float(t)) for t in range(0, 7)]
    assert waits == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_an_exit_after_a_quiet_window_restarts_at_once_again() -> None:
    policy = RestartBackoff(base=0.5, window=60.0)
    assert [policy.after_exit(t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.5, 1.0]
    assert policy.after_exit(62.0) == 0.0
    assert policy.after_exit(63.0) == 0.5


@given(st.lists(st.floats(min_value=0.0, max_value=500.0), min_size=1, max_size=40))
def test_waits_stay_within_bounds_and_only_a_quiet_window_resets(gaps: list[float]) -> None:
    policy = RestartBackoff(base=0.5, cap=30.0, window=60.0)
    now, previous = 0.0, None
    for gap in gaps:
        now += gap
        wait = policy.after_exit(now)
        assert 0.0 <= wait <= 30.0
        if previous is None or gap >= 60.0:
            assert wait == 0.0
        else:
            assert wait >= min(30.0, max(previous, 0.25) * 2) or wait == 30.0
        previous = wait
