"""``exalb.heartbeat``: alive, stale or unknown, decided from a Lease and the reader's clock.

The writer's side (one PUT per quarter of the duration, the chart's RBAC and admission
policy) is proven on the real apiserver in tests/integration/announcer/test_heartbeat.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from announcer.kube.heartbeat import put_body
from exalb.heartbeat import (
    ALIVE,
    CLOCK_SKEW,
    MISSING,
    STALE,
    Heartbeat,
    heartbeat_from,
    lease_name,
    liveness,
    renew_interval,
)
from exalb.kube.lease import micro_time

NOW = 1_800_000_000.0
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
durations = st.integers(min_value=1, max_value=3600)
offsets = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(times, durations, offsets)
def test_alive_exactly_while_the_renewal_is_within_one_duration_either_way(
    renewed: float, duration: int, offset: float
) -> None:
    now = renewed + offset
    state = liveness(Heartbeat("n1", renewed, duration), now).state
    age = now - renewed
    expected = STALE if age > duration else CLOCK_SKEW if age < -duration else ALIVE
    assert state == expected


@given(
    times, durations, st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e6)
)
def test_once_stale_it_stays_stale_until_renewed(
    renewed: float, duration: int, late: float, later: float
) -> None:
    beat = Heartbeat("n1", renewed, duration)
    first = renewed + duration + 0.001 + late
    assert liveness(beat, first).state == STALE
    assert liveness(beat, first + later).state == STALE


@given(durations, st.floats(min_value=0, max_value=1e7))
def test_a_renewal_in_the_future_is_never_fresh_for_longer_than_two_durations(
    duration: int, ahead: float
) -> None:
    """A node whose clock runs ahead must not look alive for as long as the clocks disagree."""
    beat = Heartbeat("n1", NOW + ahead, duration)
    if ahead > duration:
        assert liveness(beat, NOW).state == CLOCK_SKEW
    assert liveness(beat, NOW + ahead + duration + 0.001).state == STALE


def test_the_messages_an_operator_reads() -> None:
    dead = liveness(Heartbeat("n1", NOW - 47, 40), NOW)
    assert dead.message == "announcer not running: no heartbeat for 47 s (expected every 10 s)"
    assert not dead.alive and dead.age == 47
    quick = liveness(Heartbeat("n1", NOW - 3.5, 3), NOW)
    assert quick.message == "announcer not running: no heartbeat for 3.5 s (expected every 0.8 s)"
    assert liveness(Heartbeat("n1", NOW - 40, 40), NOW).alive  # the boundary is still fresh
    skewed = liveness(Heartbeat("n1", NOW + 120, 40), NOW)
    assert skewed.state == CLOCK_SKEW and "120 s ahead of this clock" in skewed.message
    assert liveness(None, NOW).state == MISSING
    assert liveness(Heartbeat("n1", None, 40), NOW).state == STALE


@given(st.floats(min_value=0, max_value=4e9))
def test_a_lease_as_the_announcer_writes_it_reads_back_to_the_microsecond(at: float) -> None:
    lease = {
        "spec": {
            "holderIdentity": "n1",
            "leaseDurationSeconds": 40,
            "renewTime": micro_time(datetime.fromtimestamp(at, UTC)),
        }
    }
    beat = heartbeat_from(lease)
    assert beat.holder == "n1" and beat.duration == 40
    assert beat.renewed is not None and abs(beat.renewed - at) < 1e-5


def test_a_lease_without_a_zone_or_renewal_is_not_read_as_one() -> None:
    assert heartbeat_from({"spec": {"renewTime": "2026-11-30T09:00:00"}}).renewed is None
    assert heartbeat_from({}) == Heartbeat("", None, 0.0)


def test_names_and_interval() -> None:
    assert lease_name("node-1") == "exalb-announcer-node-1"
    assert renew_interval(40) == 10


def test_a_renewal_sends_the_lease_back_without_managed_fields() -> None:
    """The server keeps its managedFields when a PUT carries none: no need to resend them."""
    lease = {
        "metadata": {"name": "exalb-announcer-n1", "resourceVersion": "7", "managedFields": [{}]},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "old"},
    }
    body = put_body(lease, {"renewTime": "new"})
    assert body["metadata"] == {"name": "exalb-announcer-n1", "resourceVersion": "7"}
    assert body["spec"] == {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "new"}
    assert lease["metadata"]["managedFields"] == [{}]  # the cached Lease is left as it was
