"""Leader election and fencing: the decision rule, and the elector on an injected clock.

No test sleeps: time is a number the test moves, and the Lease lives in a small in-memory
store with the API server's resourceVersion rule (the real one is in the integration tests).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exalb.kube import retry
from exalb.kube.lease import Action, LeaderElector, LeaseConfig, Record, decide
from exalb.kube.rest import ApiError


def rec(holder: str, duration: int = 15) -> Record:
    return Record(holder=holder, renew_time="t", duration=duration, transitions=0)


def test_free_or_released_lease_is_taken() -> None:
    assert decide(None, "me", 0, 15) is Action.ACQUIRE
    assert decide(rec(""), "me", 0, 15) is Action.ACQUIRE


def test_holder_renews_and_others_wait_a_full_duration() -> None:
    assert decide(rec("me"), "me", 100, 15) is Action.RENEW
    assert decide(rec("other"), "me", 14.9, 15) is Action.WAIT
    assert decide(rec("other"), "me", 15.0, 15) is Action.ACQUIRE
    # the holder's own (longer) duration is respected
    assert decide(rec("other", duration=60), "me", 30, 15) is Action.WAIT


def test_config_demands_margin_between_deadline_and_expiry() -> None:
    with pytest.raises(ValueError, match="renew_deadline < lease_duration"):
        LeaseConfig("ns", "l", "me", lease_duration=10, renew_deadline=10)


# --- the elector, on an injected clock and an in-memory Lease store ----------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Leases:
    """The three verbs the elector uses, with the API server's resourceVersion rule."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False
        self.timeouts: list[float | None] = []

    def _bump(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(body)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def get(self, path: str, *, timeout: Any = None) -> dict[str, Any]:
        self.timeouts.append(timeout)
        if self.down:
            raise ConnectionError("unreachable")
        if path not in self.objects:
            raise ApiError(404, "Not Found", "")
        return copy.deepcopy(self.objects[path])

    def create(self, path: str, body: dict[str, Any], *, timeout: Any = None) -> dict[str, Any]:
        name = f"{path}/{body['metadata']['name']}"
        if name in self.objects:
            raise ApiError(409, "Conflict", "")
        return self._bump(name, body)

    def replace(self, path: str, body: dict[str, Any], *, timeout: Any = None) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("unreachable")
        if body["metadata"].get("resourceVersion") != self.objects[path]["metadata"].get(
            "resourceVersion"
        ):
            raise ApiError(409, "Conflict", "")
        return self._bump(path, body)


def elector(leases: Leases, clock: Clock, identity: str = "a") -> LeaderElector:
    cfg = LeaseConfig("ns", "l", identity, 15, 10, 2)
    return LeaderElector(leases, cfg, clock=clock)


def test_not_leader_before_acquiring_then_leader_until_renew_start_plus_deadline() -> None:
    leases, clock = Leases(), Clock()
    a = elector(leases, clock)
    changes: list[bool] = []
    a.on_change(changes.append)
    assert not a.is_leader() and a.remaining() == 0
    assert a.tick() == 2  # creates the Lease
    assert a.is_leader() and a.remaining() == 10
    clock.now += 9.5
    assert a.is_leader() and a.remaining() == 0.5
    leases.down = True  # cannot renew
    clock.now += 0.25
    a.tick()
    assert a.is_leader()  # still inside the deadline of the last successful renew
    clock.now += 0.25
    assert not a.is_leader() and a.remaining() == 0
    a.tick()
    assert changes == [True, False]


def test_a_renew_counts_from_when_it_started_not_when_it_returned() -> None:
    leases, clock = Leases(), Clock()
    a = elector(leases, clock)
    a.tick()
    slow_get = leases.get

    def get_taking_three_seconds(path: str, *, timeout: Any = None) -> dict[str, Any]:
        clock.now += 3
        return slow_get(path, timeout=timeout)

    leases.get = get_taking_three_seconds  # type: ignore[method-assign]
    started = clock.now
    a.tick()
    assert a.remaining() == pytest.approx(started + 10 - clock.now) == pytest.approx(7)


def test_a_write_attempt_after_the_deadline_is_refused_and_never_sent() -> None:
    leases, clock = Leases(), Clock()
    a = elector(leases, clock)
    a.tick()
    sent: list[float] = []
    assert retry.fenced(lambda t: sent.append(t) or "ok", a.remaining) == "ok"
    clock.now += 10
    with pytest.raises(retry.NotLeader):
        retry.fenced(sent.append, a.remaining)
    assert len(sent) == 1


def test_every_attempt_checks_the_lease_and_its_timeout_is_capped_by_the_validity() -> None:
    leases, clock = Leases(), Clock()
    a = elector(leases, clock)
    a.tick()
    clock.now += 7  # 3 s of validity left
    timeouts: list[float] = []

    def send(timeout: float) -> None:
        timeouts.append(timeout)
        clock.now += 2.5  # the attempt times out after taking 2.5 s
        raise ConnectionError("timed out")

    with pytest.raises(retry.NotLeader):
        retry.fenced(send, a.remaining, attempts=4, max_seconds=60)
    # first attempt: capped at the 3 s left (not the 10 s default); second: 0.5 s left;
    # the third is refused before it is sent
    assert timeouts == [pytest.approx(3.0), pytest.approx(0.5)]


def test_standby_takes_over_only_after_lease_duration_unchanged_on_its_own_clock() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    a.tick()
    # b sees a's record at t0; it reads again a quarter retry period later, so it learns
    # of a renew at most 0.5 s late (that lag would add to a failover)
    assert b.tick() == 0.5
    assert not b.is_leader()
    clock.now += 2
    a.tick()  # a renews: the record changes, so b's wait starts again
    b.tick()
    t_seen = clock.now
    # a dies; b waits exactly until the record has been unchanged for lease_duration
    clock.now += 14.9
    wait = b.tick()
    assert not b.is_leader()
    assert wait == pytest.approx(0.1)  # b sleeps until the expiry, not a whole retry period
    clock.now = t_seen + 15
    b.tick()
    assert (
        b.is_leader()
        and leases.objects[next(iter(leases.objects))]["spec"]["holderIdentity"] == "b"
    )
    # the deposed leader's renew is a 409 on the new holder's record; it stops by its deadline
    a.tick()
    assert not a.is_leader()


def test_a_released_lease_is_taken_at_once() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector(leases, clock, "a"), elector(leases, clock, "b")
    a.tick()
    b.tick()
    a.stop(release=True)
    assert not a.is_leader()
    b.tick()
    assert b.is_leader()
