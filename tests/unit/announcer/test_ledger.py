"""The route ledger against a model ExaBGP, under any interleaving of changes and failures.

The model ExaBGP applies the commands it is sent in order, may reject one (it
then changes nothing), and may exit at any time, losing every unanswered command
and its RIB; the next one starts with the ledger's seed as its static routes.
Its RIB is what the router is told.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from announcer.core.diff import WITHDRAW_ALL, Command
from announcer.core.ledger import RouteLedger, apply
from announcer.core.model import Attrs, Routes

PREFIXES = st.sampled_from([f"198.51.100.{i}/32" for i in range(12)])
ATTRS = st.sampled_from(
    [
        Attrs("192.0.2.11"),
        Attrs("192.0.2.12"),
        Attrs("192.0.2.11", ("65000:1",)),
        Attrs("192.0.2.11", link_bandwidth=(64513, 1_250_000)),
        Attrs("192.0.2.11", link_bandwidth=(64513, 2_500_000)),
    ]
)
ROUTES = st.dictionaries(PREFIXES, ATTRS, max_size=12)
CHANGES = st.dictionaries(PREFIXES, st.none() | ATTRS, max_size=5)


def execute(rib: Routes, command: Command) -> None:
    """What ExaBGP does with ``command``: its withdraw-all empties the RIB, whatever the
    command claims to change; any other command changes exactly what it lists."""
    if command.line == WITHDRAW_ALL:
        rib.clear()
    else:
        apply(rib, command)


class LedgerAgainstExaBGP(RuleBasedStateMachine):
    HOLD = 0.0  # RouteLedger.weight_hold

    def __init__(self) -> None:
        super().__init__()
        self.ledger = RouteLedger(self.HOLD)
        self.weight_sent: dict[str, float] = {}  # prefix -> when a weight-only change was sent
        self.clock = 0.0
        self.rib: Routes = {}  # the model ExaBGP's RIB: what the router is told
        self.unread: deque[Command] = deque()  # written, not yet processed by ExaBGP
        self.running = False
        self.seed: Routes | None = None  # a config written, its process not yet attached
        self.kept_across_restart: set[str] = set()

    def tick(self) -> float:
        self.clock += 1.0
        return self.clock

    # --- the decision ----------------------------------------------------
    @rule(routes=ROUTES)
    def set_desired(self, routes: Routes) -> None:
        self.ledger.set_desired(routes, self.tick())
        self.kept_across_restart &= set(routes)

    @rule(changes=CHANGES)
    def update(self, changes: dict[str, Attrs | None]) -> None:
        self.ledger.update(changes, self.tick())
        self.kept_across_restart -= {p for p, a in changes.items() if a is None}

    # --- the writer and ExaBGP ------------------------------------------
    @rule(seconds=st.sampled_from([0.5, 1.0, 4.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock += seconds

    @rule()
    def send(self) -> None:
        before = dict(self.ledger.sent)
        for command in self.ledger.take_commands(self.clock):
            for prefix, attrs in command.changes:
                if attrs is None:
                    assert prefix not in self.ledger.desired, "withdraw of a desired prefix"
                    assert prefix not in self.kept_across_restart
                    continue
                old = before.get(prefix)
                if old is not None and replace(attrs, link_bandwidth=old.link_bandwidth) == old:
                    last = self.weight_sent.get(prefix)
                    assert last is None or self.clock - last >= self.HOLD, "weight change held"
                    self.weight_sent[prefix] = self.clock
            self.unread.append(command)

    @precondition(lambda self: self.running and self.unread)
    @rule(accept=st.booleans())
    def exabgp_answers(self, accept: bool) -> None:
        command = self.unread.popleft()
        if accept:
            execute(self.rib, command)
        item = self.ledger.answer(accept)
        assert item is not None and item.command is command

    @precondition(lambda self: self.running)
    @rule(applied_before_exit=st.booleans())
    def exabgp_exits(self, applied_before_exit: bool) -> None:
        """ExaBGP dies; with ``applied_before_exit`` it applied a command whose ack is lost."""
        if applied_before_exit and self.unread:
            execute(self.rib, self.unread.popleft())
        self.running = False
        self.unread.clear()
        self.rib = {}
        self.kept_across_restart = set(self.ledger.desired)
        self.weight_sent.clear()  # a new ExaBGP's session hears every route anew
        self.ledger.detach()
        assert self.ledger.take_commands() == []  # nothing is written to a dead process

    @precondition(lambda self: not self.running and self.seed is None)
    @rule()
    def config_written(self) -> None:
        seed, _ = self.ledger.seed()
        assert seed == self.ledger.desired  # the seed covers exactly the desired state
        self.seed = seed

    @precondition(lambda self: self.seed is not None)
    @rule()
    def exabgp_attached(self) -> None:
        assert self.seed is not None
        self.rib = dict(self.seed)
        self.ledger.attach(self.seed)
        self.seed = None
        self.running = True

    # --- what must always hold ------------------------------------------
    @invariant()
    def answered_routes_are_what_exabgp_holds(self) -> None:
        if self.running and not self.ledger.in_flight:
            assert self.ledger.acked == self.rib

    @rule()
    def settle(self) -> None:
        """Everything in flight answered: the router is told exactly what is desired."""
        if not self.running:
            if self.seed is None:
                self.config_written()
            self.exabgp_attached()
        self.clock += self.HOLD  # a held weight change goes once its hold ends
        for _ in range(10):
            self.send()
            if not self.unread:
                break
            while self.unread:
                self.exabgp_answers(True)
        assert not self.unread
        assert self.rib == self.ledger.desired
        assert self.ledger.acked == self.ledger.desired
        assert self.ledger.converged()


# Generation speed is the machine's load, not the ledger's correctness: on 2 shared cores
# the too_slow health check failed a run whose every example passed.
SETTINGS = settings(
    max_examples=150, stateful_step_count=30, suppress_health_check=[HealthCheck.too_slow]
)
LedgerAgainstExaBGP.TestCase.settings = SETTINGS
TestLedger = LedgerAgainstExaBGP.TestCase


class LedgerWithWeightHold(LedgerAgainstExaBGP):
    """The same, with weight-only changes coalesced: at most one per prefix per hold."""

    HOLD = 3.0


LedgerWithWeightHold.TestCase.settings = SETTINGS
TestLedgerWithWeightHold = LedgerWithWeightHold.TestCase


def test_weight_changes_inside_the_hold_are_coalesced_and_the_last_one_goes() -> None:
    ledger = RouteLedger(weight_hold=5.0)
    ledger.attach({})
    prefix = "198.51.100.1/32"

    def weight(n: int) -> Attrs:
        return Attrs("192.0.2.11", link_bandwidth=(64513, n * 1_250_000))

    ledger.update({prefix: weight(1)}, 0.0)
    assert len(ledger.take_commands(0.0)) == 1  # a new route goes at once
    for n, now in ((2, 1.0), (3, 2.0), (4, 3.0)):
        ledger.update({prefix: weight(n)}, now)
        assert ledger.take_commands(now) == []  # held: within 5 s of the last change
    assert ledger.due() == 5.0
    (command,) = ledger.take_commands(5.0)
    assert command.changes == ((prefix, weight(4)),)
    assert ledger.due() is None
    ledger.update(
        {prefix: Attrs("192.0.2.11", ("65000:1",), link_bandwidth=weight(5).link_bandwidth)}, 6.0
    )
    assert len(ledger.take_commands(6.0)) == 1  # another attribute changed too: at once


def test_an_unchanged_desired_table_is_not_a_change() -> None:
    ledger = RouteLedger()
    routes = {"198.51.100.1/32": Attrs("192.0.2.11")}
    assert ledger.set_desired(routes, 1.0)
    assert not ledger.set_desired(dict(routes), 2.0)
    assert ledger.decided_at == 1.0


def test_a_rejected_command_is_sent_again() -> None:
    ledger = RouteLedger()
    ledger.attach({})
    ledger.update({"198.51.100.1/32": Attrs("192.0.2.11")}, 1.0)
    (first,) = ledger.take_commands()
    assert ledger.take_commands() == []
    rejected = ledger.answer(False)
    assert rejected is not None and rejected.command is first
    assert ledger.sent == {}
    (again,) = ledger.take_commands()
    assert again.line == first.line
    assert ledger.answer(True) is not None and ledger.converged()


def test_an_answer_with_nothing_in_flight_is_ignored() -> None:
    ledger = RouteLedger()
    ledger.attach({})
    assert ledger.answer(True) is None
    assert ledger.converged()


def test_nothing_desired_is_one_withdraw_all_listing_every_route() -> None:
    ledger = RouteLedger()
    table = {f"198.51.{i // 250}.{i % 250}/32": Attrs("192.0.2.11") for i in range(1200)}
    ledger.set_desired(table, 0.0)
    ledger.attach(table)
    ledger.update({"198.51.0.1/32": None}, 1.0)
    (few,) = ledger.take_commands()  # some of them: listed
    assert few.line.startswith("withdraw attributes") and few.changes == (("198.51.0.1/32", None),)
    ledger.set_desired({}, 2.0)
    (command,) = ledger.take_commands()
    assert command.line == WITHDRAW_ALL
    assert {p for p, _ in command.changes} == set(table) - {"198.51.0.1/32"}
    assert all(attrs is None for _, attrs in command.changes)
