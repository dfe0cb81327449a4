"""Announce after the data path answers (issue 13; metallb#496, cilium#17547, #19810).

An advertisement with ``dataPathCheck`` is announced by a node only while the latest
TCP connect from that node to the Service's ClusterIP (``DataPathTarget``, through the
node's own kube-proxy rules) succeeded. The prober (``announcer.datapath``) makes the
connects; this module holds their results per Service and turns them into a reason,
so the decision stays pure and explainable ("connect 198.19.0.12:80 refused after
0.001 s at ...").

Hysteresis, so a target that alternates does not flap the route:

- the first pass announces at once when no check of that Service on this node has
  ever failed (the common case: a new Service, a restarted announcer);
- any failing check withdraws at once (a node that cannot deliver must stop drawing
  traffic; one lost SYN is not a failure, the connect timeout spans a retransmission);
- after a failure, ``RISE`` consecutive passes are needed before announcing again, so
  a target that fails every other check is announced at most once;
- a pass older than ``max_age`` (the prober stopped or fell behind) counts as a
  failure: a route is never kept on old evidence.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from exalb.assignments import Assignment, DataPathTarget, any_matches

DATA_PATH_NO_TARGET = "dataPathNoTarget"
DATA_PATH_UNCHECKED = "dataPathUnchecked"
DATA_PATH_FAILING = "dataPathFailing"
DATA_PATH_RECOVERING = "dataPathRecovering"
REASONS = (DATA_PATH_NO_TARGET, DATA_PATH_UNCHECKED, DATA_PATH_FAILING, DATA_PATH_RECOVERING)
RISE = 2  # consecutive passes that announce again after a failure


@dataclass(frozen=True)
class Probe:
    """One connect from this node: to ``target`` ("198.19.0.12:80"), how it ended, when."""

    target: str
    ok: bool
    detail: str  # "connected after 0.002 s", "refused after 0.001 s", "timed out after 2 s"
    at: float  # epoch seconds when it ended

    def evidence(self) -> str:
        return f"connect {self.target} {self.detail} at {stamp(self.at)}"


@dataclass(frozen=True)
class CheckState:
    """What the decision needs from a Service's probes on this node."""

    last: Probe
    passes: int = 0  # consecutive passes ending with ``last`` (0 when it failed)
    failed: bool = False  # a check of this Service failed here: RISE passes are needed

    @property
    def passing(self) -> bool:
        return self.last.ok and self.passes >= (RISE if self.failed else 1)


def record(state: CheckState | None, probe: Probe) -> CheckState:
    """The state after ``probe``; passes on another target (an edited port) do not count."""
    same = state is not None and state.last.target == probe.target
    passes = (state.passes if same and state is not None else 0) + 1 if probe.ok else 0
    failed = (state is not None and state.failed) or not probe.ok
    return CheckState(probe, passes, failed)


def expire(state: CheckState, now: float, max_age: float) -> CheckState:
    """A pass older than ``max_age`` becomes a failure: no route is kept on old evidence."""
    age = now - state.last.at
    if not state.last.ok or age <= max_age:
        return state
    detail = f"has no result for {age:.0f} s (more than {max_age:g} s): the prober is behind"
    return record(state, replace(state.last, ok=False, detail=detail, at=now))


def probe_target(a: Assignment, labels: Mapping[str, str]) -> DataPathTarget | None:
    """Where this node connects for ``a``: only when an advertisement that selects this
    node asks for the check, and the entry names a target."""
    wanted = any(
        adv.data_path_check and any_matches(adv.node_selectors, labels) for adv in a.advertisements
    )
    return a.data_path if wanted else None


def check_reason(target: DataPathTarget | None, state: CheckState | None) -> str | None:
    """Why an advertisement with ``dataPathCheck`` is not announced here, or None."""
    if target is None or target.problem:
        return DATA_PATH_NO_TARGET
    if state is None or state.last.target != str(target):
        return DATA_PATH_UNCHECKED
    if not state.last.ok:
        return DATA_PATH_FAILING
    if not state.passing:
        return DATA_PATH_RECOVERING
    return None


def evidence(reason: str, target: DataPathTarget | None, state: CheckState | None) -> str:
    """The reason in words, with the probe that decided it."""
    if reason == DATA_PATH_NO_TARGET:
        why = target.problem if target is not None else "the entry names no target"
        return f"dataPathCheck has nothing to connect to: {why}"
    if reason == DATA_PATH_UNCHECKED or state is None:
        return f"no connect to {target} has ended on this node yet"
    if reason == DATA_PATH_FAILING:
        return state.last.evidence()
    return (
        f"{state.last.evidence()}; {state.passes} of {RISE} passes in a row needed after a failure"
    )


class DataPathChecks:
    """Every probed Service's state on this node; the reconciler thread is its only user."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.states: dict[str, CheckState] = {}  # assignment key -> its state

    def record(self, key: str, probe: Probe) -> bool:
        """Fold in one result; True when the Service's verdict may have changed."""
        old = self.states.get(key)
        new = self.states[key] = record(old, probe)
        return old is None or _verdict(old) != _verdict(new)

    def expire(self, now: float) -> set[str]:
        """The Services whose pass just went stale."""
        stale = set()
        for key, state in self.states.items():
            aged = expire(state, now, self.max_age)
            if aged is not state:
                self.states[key] = aged
                stale.add(key)
        return stale

    def next_expiry(self) -> float | None:
        """When the oldest pass goes stale: the caller re-decides then."""
        times = [s.last.at + self.max_age for s in self.states.values() if s.last.ok]
        return min(times, default=None)

    def retain(self, keys: Iterable[str]) -> None:
        """Forget Services no longer probed (deleted, or the check turned off)."""
        wanted = set(keys)
        for key in [k for k in self.states if k not in wanted]:
            del self.states[key]


def _verdict(state: CheckState) -> tuple[str, bool, bool]:
    return state.last.target, state.last.ok, state.passing


def stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
