"""/readyz holds at start-up until the node announces, then stays passed (a latch)."""

from __future__ import annotations

import time

from announcer.main import announced_once


def test_readiness_waits_for_the_first_announcement_then_ignores_later_session_losses() -> None:
    reasons: list[str | None] = ["no reconcile pass yet", "session down: router", None, "down"]
    check = announced_once(lambda: reasons.pop(0), wait=60)
    assert check() == "no reconcile pass yet"
    assert check() == "session down: router"
    assert check() is None
    assert check() is None  # a later loss is the liveness and status's business, not readiness
    assert reasons == ["down"]


def test_a_router_that_never_answers_delays_readiness_by_at_most_the_wait() -> None:
    check = announced_once(lambda: "session down: router", wait=0.2)
    assert check() == "session down: router"
    time.sleep(0.25)
    assert check() is None


def test_wait_zero_turns_the_check_off() -> None:
    assert announced_once(lambda: "session down: router", wait=0)() is None
