"""When a stopping announcer Ceases, over any order of UPDATEs sent and clock readings."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from announcer.core.shutdown import (
    BUDGET,
    SESSION_DOWN,
    TIMEOUT,
    WITHDRAWN,
    Cease,
    PeerShutdown,
    ShutdownTimes,
)

PREFIXES = [f"198.51.100.{i}/32" for i in range(12)]
TIMES = ShutdownTimes(budget=0.5, hold=0.2, timeout=10.0)

# A run: readings of the clock in order, each maybe with an UPDATE withdrawing some prefixes.
steps = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # seconds since the previous step
        st.lists(st.sampled_from(PREFIXES), max_size=6),  # withdrawn by an UPDATE sent then
    ),
    max_size=25,
)
times = st.builds(
    ShutdownTimes,
    budget=st.floats(0, 5, allow_nan=False),
    hold=st.floats(0, 2, allow_nan=False),
    timeout=st.floats(0, 15, allow_nan=False),
)


@given(
    announced=st.sets(st.sampled_from(PREFIXES)),
    run=steps,
    times=times,
    graceful_restart=st.booleans(),
)
def test_the_cease_never_comes_early_and_always_by_the_timeout(
    announced: set[str],
    run: list[tuple[float, list[str]]],
    times: ShutdownTimes,
    graceful_restart: bool,
) -> None:
    shutdown = PeerShutdown(announced, 100.0, times, graceful_restart)
    now, on_wire = 100.0, set()
    last_withdrawal: float | None = None
    for gap, withdrawn in run:
        now += gap
        shutdown.sent(withdrawn, now)
        if announced - on_wire and announced <= on_wire | set(withdrawn):
            last_withdrawal = now
        on_wire |= set(withdrawn)
        answer = shutdown.decide(now, session_up=True)
        left = announced - on_wire
        end = 100.0 + times.timeout
        if isinstance(answer, Cease):
            assert answer.unconfirmed == len(left)
            if not left:
                assert answer.why == WITHDRAWN
                # every withdrawal held for, unless the timeout came first
                assert last_withdrawal is None or now >= min(last_withdrawal + times.hold, end)
            elif graceful_restart:
                assert answer.why == TIMEOUT and now >= end  # stale routes: only at the end
            else:
                assert answer.why == BUDGET and now >= min(100.0 + times.budget, end)
            return
        # Waiting: never past the end, and never for a time already passed.
        assert now < answer <= end
        assert left or last_withdrawal is not None
    # Whatever happened, asking at the end closes the session.
    assert isinstance(shutdown.decide(max(now, 100.0 + times.timeout), True), Cease)


@given(announced=st.sets(st.sampled_from(PREFIXES)), graceful_restart=st.booleans())
def test_a_session_already_down_is_left_at_once(
    announced: set[str], graceful_restart: bool
) -> None:
    shutdown = PeerShutdown(announced, 0.0, TIMES, graceful_restart)
    assert shutdown.decide(0.0, session_up=False) == Cease(SESSION_DOWN, len(announced))


def test_with_nothing_announced_there_is_nothing_to_hold_for() -> None:
    assert PeerShutdown([], 0.0, TIMES, False).decide(0.0, True) == Cease(WITHDRAWN, 0)


def test_withdrawals_on_the_wire_within_the_budget_are_held_then_ceased() -> None:
    shutdown = PeerShutdown(PREFIXES[:3], 0.0, TIMES, False)
    assert shutdown.decide(0.0, True) == 0.5  # the budget
    shutdown.sent(PREFIXES[:2], 0.1)
    shutdown.sent(PREFIXES[2:3], 0.3)
    assert shutdown.decide(0.3, True) == 0.5  # 0.3 + hold
    assert shutdown.decide(0.5, True) == Cease(WITHDRAWN, 0)


def test_past_the_budget_the_cease_drops_what_is_left() -> None:
    shutdown = PeerShutdown(PREFIXES, 0.0, TIMES, False)
    shutdown.sent(PREFIXES[:5], 0.2)
    assert shutdown.decide(0.5, True) == Cease(BUDGET, len(PREFIXES) - 5)


def test_with_graceful_restart_the_withdrawals_are_waited_for_to_the_timeout() -> None:
    shutdown = PeerShutdown(PREFIXES, 0.0, TIMES, True)
    assert shutdown.decide(0.5, True) == 10.0
    shutdown.sent(PREFIXES, 4.0)
    assert shutdown.decide(4.0, True) == 4.2
    late = PeerShutdown(PREFIXES, 0.0, TIMES, True)
    assert late.decide(10.0, True) == Cease(TIMEOUT, len(PREFIXES))
