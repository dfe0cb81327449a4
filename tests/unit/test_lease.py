"""The Lease decision rule: a standby takes over only after the record stayed unchanged."""

from __future__ import annotations

import pytest

from exalb.kube.lease import Action, LeaseConfig, Record, decide


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
