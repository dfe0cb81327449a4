"""The ExaBGP fixes the launcher applies and checks, on ExaBGP's own classes.

Each test restores the patched class attributes afterwards (``monkeypatch``), so
nothing leaks into other tests that import ExaBGP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from exabgp.bgp.message import Action
from exabgp.bgp.message.update import Update
from exabgp.bgp.message.update.attribute import Attributes, Origin
from exabgp.bgp.message.update.nlri import CIDR, INET
from exabgp.bgp.neighbor import Neighbor
from exabgp.configuration.configuration import Configuration
from exabgp.configuration.static import ParseStatic
from exabgp.environment import getenv
from exabgp.logger import log
from exabgp.protocol.family import AFI, SAFI
from exabgp.protocol.ip import IP, IPSelf
from exabgp.reactor.asynchronous import ASYNC
from exabgp.reactor.delay import Delay
from exabgp.reactor.interrupt import Signal
from exabgp.reactor.protocol import Protocol
from exabgp.rib.change import Change
from exabgp.rib.outgoing import OutgoingRIB

from announcer.core.config import render
from announcer.core.model import Attrs
from announcer.exabgp import launcher
from announcer.exabgp.speaker import grouped_seed_reported
from exalb.bgppeer import Peer


@pytest.fixture(autouse=True)
def restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Neighbor, "remove_self", Neighbor.remove_self)
    monkeypatch.setattr(Delay, "increase", Delay.increase)
    monkeypatch.setattr(ASYNC, "LIMIT", ASYNC.LIMIT)
    monkeypatch.setattr(OutgoingRIB, "del_from_rib", OutgoingRIB.del_from_rib)
    monkeypatch.setattr(OutgoingRIB, "withdraw", OutgoingRIB.withdraw)
    monkeypatch.setattr(OutgoingRIB, "updates", OutgoingRIB.updates)
    monkeypatch.setattr(Update, "_split_nlris", Update._split_nlris)
    monkeypatch.setattr(Protocol, "send", Protocol.send)
    monkeypatch.setitem(ParseStatic.known, "attributes", ParseStatic.known["attributes"])
    for name in [*launcher.SIGNAL_ACTIONS, "_defer_or_schedule"]:
        monkeypatch.setattr(Signal, name, getattr(Signal, name))


def _change(next_hop: IP) -> Change:
    nlri = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
    nlri.cidr = CIDR(IP.pton("198.51.100.7"), 32)
    nlri.nexthop = next_hop
    return Change(nlri, Attributes())


def _neighbor() -> Neighbor:
    n = Neighbor()
    n["router-id"] = IP.create("192.0.2.9")
    n["local-address"] = IP.create("192.0.2.9")
    return n


# Every fix, in the order the launcher applies them; the connect retry only when asked for.
ALL_FIXES = [
    launcher.REMOVE_SELF,
    launcher.STATIC_ATTRIBUTES,
    launcher.API_STEPS,
    launcher.WITHDRAW_COPY,
    launcher.SORT_KEY,
    launcher.SEND_UNPARSED,
    launcher.BULK_WITHDRAW,
    launcher.QUIET_SIGNALS,
    launcher.GROUP_IPV6,
    launcher.CONNECT_RETRY,
]


def test_release_is_the_one_the_fixes_were_written_for() -> None:
    # pyproject pins ExaBGP; if the pin moves, the fixes must be re-checked against it.
    assert launcher.release_matches()
    assert launcher.apply({}) == ALL_FIXES[:-1]


def test_every_applied_fix_is_verified_to_hold() -> None:
    env = {launcher.CONNECT_RETRY_ENV: "3"}
    applied = launcher.apply(env)
    assert applied == ALL_FIXES
    launcher.verify(applied, env)  # raises if one did not hold


def _undo(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put ExaBGP's original back for one fix, as if the patch had missed its target."""
    original = {
        launcher.REMOVE_SELF: (Neighbor, "remove_self", Neighbor.remove_self),
        launcher.CONNECT_RETRY: (Delay, "increase", Delay.increase),
        launcher.API_STEPS: (ASYNC, "LIMIT", ASYNC.LIMIT),
        launcher.WITHDRAW_COPY: (OutgoingRIB, "del_from_rib", OutgoingRIB.del_from_rib),
        launcher.SORT_KEY: (Update, "_split_nlris", Update._split_nlris),
        launcher.SEND_UNPARSED: (Protocol, "send", Protocol.send),
        launcher.BULK_WITHDRAW: (OutgoingRIB, "withdraw", OutgoingRIB.withdraw),
        launcher.QUIET_SIGNALS: (Signal, "sigterm", Signal.sigterm),
        launcher.GROUP_IPV6: (OutgoingRIB, "updates", OutgoingRIB.updates),
    }
    if name == launcher.STATIC_ATTRIBUTES:
        before = ParseStatic.known["attributes"]
        launcher.apply({launcher.CONNECT_RETRY_ENV: "3"})
        monkeypatch.setitem(ParseStatic.known, "attributes", before)
        return
    cls, attr, value = original[name]
    launcher.apply({launcher.CONNECT_RETRY_ENV: "3"})
    monkeypatch.setattr(cls, attr, value)


@pytest.mark.parametrize("name", ALL_FIXES)
def test_a_fix_that_did_not_take_hold_is_named(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _undo(name, monkeypatch)
    with pytest.raises(launcher.FixError, match=f"the {name} fix did not take hold"):
        launcher.verify(ALL_FIXES, {launcher.CONNECT_RETRY_ENV: "3"})


def test_another_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launcher.metadata, "version", lambda _: "5.0.16")
    with pytest.raises(launcher.FixError, match=r"ExaBGP is not 5\.0\.15"):
        launcher.apply({})


@pytest.mark.parametrize(
    ("cls", "name", "fix"),
    [
        (OutgoingRIB, "del_from_rib", launcher.patch_withdraw_copy),
        (Update, "_split_nlris", launcher.patch_sort_key),
        (Protocol, "send", launcher.patch_send_unparsed),
        (OutgoingRIB, "withdraw", launcher.patch_bulk_withdraw),
        (Signal, "_defer_or_schedule", launcher.patch_quiet_signals),
    ],
)
def test_a_method_replaced_whole_must_be_the_source_its_fix_was_written_for(
    cls: type, name: str, fix: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A release that changed the method would lose that change under the fix: refuse it.
    original = getattr(cls, name)
    fix()  # the pinned source: applies
    monkeypatch.setattr(cls, name, original)

    def changed_upstream(self: Any, *args: Any) -> Any:
        return original(self, *args)

    changed_upstream.__qualname__ = original.__qualname__
    monkeypatch.setattr(cls, name, changed_upstream)
    with pytest.raises(launcher.FixError, match=f"{cls.__name__}.{name} is not the source"):
        fix()


def test_the_launcher_exits_with_the_reason_and_starts_no_exabgp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "fixes.json"
    monkeypatch.setenv(launcher.REPORT_ENV, str(report))
    monkeypatch.setattr(launcher, "patch_remove_self", lambda: None)  # the patch misses
    assert launcher.main() == 3
    err = capsys.readouterr().err
    assert "the remove-self fix did not take hold; not starting ExaBGP" in err
    assert "--exabgp" in err
    assert not report.exists()


def test_the_report_names_the_fixes_that_hold(tmp_path: Path) -> None:
    report = tmp_path / "fixes.json"
    launcher.report([launcher.REMOVE_SELF, launcher.STATIC_ATTRIBUTES], str(report))
    assert json.loads(report.read_text()) == [launcher.REMOVE_SELF, launcher.STATIC_ATTRIBUTES]
    assert report.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("applied", "grouped"),
    [
        ([launcher.REMOVE_SELF, launcher.STATIC_ATTRIBUTES], True),
        ([launcher.REMOVE_SELF], False),  # the grouped-seed fix did not take hold
        ([], False),
    ],
)
def test_the_speaker_groups_its_seed_only_when_the_report_names_the_fix(
    tmp_path: Path, applied: list[str], grouped: bool
) -> None:
    report = tmp_path / "fixes.json"
    launcher.report(applied, str(report))
    assert grouped_seed_reported(report.read_text()) is grouped


@pytest.mark.parametrize("text", ["", "{", '{"static-attributes": 1}', '"static-attributes"'])
def test_a_malformed_report_names_no_fix(text: str) -> None:
    assert grouped_seed_reported(text) is False


def test_a_concrete_next_hop_is_not_copied() -> None:
    launcher.apply({})
    change = _change(IP.create("192.0.2.1"))
    assert _neighbor().remove_self(change) is change


def test_next_hop_self_is_still_resolved_on_a_copy() -> None:
    launcher.apply({})
    change = _change(IPSelf(AFI.ipv4))
    out = _neighbor().remove_self(change)
    assert out is not change
    assert str(out.nlri.nexthop) == "192.0.2.9"
    assert change.nlri.nexthop.SELF  # the configured route keeps its placeholder


def _turns_to_withdraw(prefixes: int) -> int:
    """Reactor turns ExaBGP's scheduler takes for one grouped withdraw of ``prefixes`` routes.

    The command is ExaBGP's own ``withdraw attributes ... nlri ...`` handler, run on a
    real ``ASYNC`` and API parser against a neighbour that holds the routes.
    """
    from exabgp.reactor.api import API
    from exabgp.reactor.api.command.announce import withdraw_attribute

    nlri = " ".join(f"198.51.100.{i % 250}/32" for i in range(prefixes))
    line = f"neighbor 192.0.2.3 withdraw attributes next-hop 192.0.2.4 nlri {nlri}"

    class Reactor:  # the three things the handler asks of ExaBGP's reactor
        asynchronous = ASYNC()
        configuration = type("C", (), {"inject_change": staticmethod(lambda p, c: True)})()
        processes = type("P", (), {"answer_done": lambda s, svc: None})()

        def peers(self, service: str) -> list[str]:
            return ["neighbor 192.0.2.3"]

    reactor = Reactor()
    launcher._silence_log()
    withdraw_attribute(API(reactor), reactor, "exalb", line, False)
    turns = 0
    while reactor.asynchronous.run():
        turns += 1
    return turns + 1


def test_a_bulk_withdraw_runs_in_a_few_reactor_turns_with_the_fix() -> None:
    assert _turns_to_withdraw(5000) > 50  # ExaBGP's own limit: 50 prefixes a turn
    launcher.apply({})
    assert _turns_to_withdraw(5000) <= 3


def _withdraw_everything(routes: int, queued: int = 0) -> list[Change]:
    """ExaBGP's own withdraw-all (``clear adj-rib out``) on an adj-RIB-out holding ``routes``
    sent, and ``queued`` more announced but not yet sent."""
    launcher._silence_log()
    rib = OutgoingRIB(True, [(AFI.ipv4, SAFI.unicast)])
    shared = Attributes()  # one set for all, as an API command's routes share one
    for i in range(routes + queued):
        nlri = _change(IP.create("192.0.2.1")).nlri
        nlri.cidr = CIDR(IP.pton(f"198.51.100.{i}"), 32)
        rib.add_to_rib(Change(nlri, shared))
        if i + 1 == routes:
            list(rib.updates(False))  # sent: the routes are now in the cache, nothing queued
    rib.withdraw()
    assert not list(rib.cached_changes())  # nothing is left announced
    return list(rib.queued_changes())


def test_withdraw_all_queues_the_same_withdrawals_with_the_fix() -> None:
    without = _withdraw_everything(20)
    launcher.apply({})
    with_fix = _withdraw_everything(20)
    assert [c.index() for c in with_fix] == [c.index() for c in without]
    assert all(c.nlri.action == Action.WITHDRAW for c in with_fix)
    assert len({id(c.attributes) for c in without}) == 20  # ExaBGP: a deep copy per route
    assert len({id(c.attributes) for c in with_fix}) == 1  # the fix: the routes' own set


def test_withdraw_all_also_replaces_announcements_not_yet_sent_with_the_fix() -> None:
    without = _withdraw_everything(5, queued=3)
    launcher.apply({})
    with_fix = _withdraw_everything(5, queued=3)
    assert sorted(c.index() for c in with_fix) == sorted(c.index() for c in without)
    assert len(with_fix) == 8 and all(c.nlri.action == Action.WITHDRAW for c in with_fix)


def test_nlris_are_ordered_as_exabgp_orders_them_with_the_fix() -> None:
    negotiated = type("Negotiated", (), {"families": [(AFI.ipv4, SAFI.unicast)]})()
    nlris = []
    for i in (7, 200, 3, 150, 42, 9, 0, 255):
        change = _change(IP.create("192.0.2.1"))
        change.nlri.cidr = CIDR(IP.pton(f"198.51.100.{i}"), 32 if i % 2 else 31)
        nlris.append(change.nlri)
    without = Update(nlris, Attributes())._split_nlris(negotiated)
    launcher.apply({})
    assert Update(nlris, Attributes())._split_nlris(negotiated) == without


def _negotiated() -> Any:
    from exabgp.bgp.message.open.capability import Negotiated

    negotiated = Negotiated(_neighbor())
    negotiated.families = [(AFI.ipv4, SAFI.unicast)]
    return negotiated


def _sent_to_api(send: dict[str, bool], raw: bytes) -> tuple[list[bytes], list[Any]]:
    """Send ``raw`` through ExaBGP's Protocol.send with these API ``send { ... }`` options:
    (the packet bodies handed over raw, the messages handed over decoded)."""
    from collections import Counter
    from types import SimpleNamespace

    packets: list[bytes] = []
    parsed: list[Any] = []
    processes = SimpleNamespace(
        packets=lambda *args: packets.append(args[-1]),
        message=lambda _id, neighbor, direction, message, *rest: parsed.append(message),
    )
    neighbor = SimpleNamespace(api={"send-update": True, "negotiated": False, **send})
    proto = Protocol.__new__(Protocol)
    proto.peer = SimpleNamespace(
        stats=Counter(), reactor=SimpleNamespace(processes=processes), neighbor=neighbor
    )
    proto.neighbor = neighbor
    proto.negotiated = _negotiated()
    proto.connection = SimpleNamespace(writer=lambda data: iter(()))
    launcher._silence_log()
    list(proto.send(raw))
    return packets, parsed


def _withdrawal(prefixes: int) -> bytes:
    """An UPDATE withdrawing ``prefixes`` /32s, as ExaBGP packs it."""
    changes = _withdraw_everything(prefixes)
    (raw,) = Update([c.nlri for c in changes], Attributes()).messages(_negotiated(), True)
    return bytes(raw)


PACKETS_ONLY = {"send-parsed": False, "send-consolidate": False, "send-packets": True}
PARSED_ONLY = {"send-parsed": True, "send-consolidate": False, "send-packets": False}


def test_a_sent_update_reaches_the_api_as_its_packet_without_decoding_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = _withdrawal(30)
    decoded: list[bytes] = []
    original = Update.unpack_message
    monkeypatch.setattr(
        Update, "unpack_message", lambda data, *a: decoded.append(data) or original(data, *a)
    )
    assert _sent_to_api(PACKETS_ONLY, raw) == ([raw[19:]], [])
    assert decoded == [raw[19:]]  # ExaBGP as shipped: decoded for nobody
    launcher.apply({})
    decoded.clear()
    assert _sent_to_api(PACKETS_ONLY, raw) == ([raw[19:]], [])
    assert decoded == []
    packets, parsed = _sent_to_api(PARSED_ONLY, raw)  # the parsed form asked for: decoded
    assert packets == [] and len(parsed[0].nlris) == 30 and decoded == [raw[19:]]


def _handled(signals: list[int], ready: bool) -> list[str]:
    """Deliver ``signals`` to ExaBGP's handlers (called directly: no OS handler is set);
    what they wrote to ExaBGP's log, and what the reactor will act on, last."""
    written: list[str] = []
    handlers = Signal.__new__(Signal)
    handlers.received, handlers.number, handlers._ready, handlers._pending = 0, 0, ready, []
    names = {15: handlers.sigterm, 1: handlers.sighup, 10: handlers.sigusr1}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(log, "critical", lambda message, *_: written.append(message()))
        for signum in signals:
            names[signum](signum, None)
    pending = [Signal.name(action) for action, _ in handlers._pending]
    return [*written, f"received={Signal.name(handlers.received)}", *pending]


def test_signal_handlers_write_nothing_and_schedule_the_same_with_the_fix() -> None:
    shipped = _handled([15, 10], True)
    assert shipped[:2] == ["SIGTERM received", "scheduling shutdown"]  # writes: the hazard
    assert shipped[-1] == "received=shutdown"
    launcher.apply({})
    assert _handled([15, 10], True) == ["received=shutdown"]
    # Before the reactor is ready, signals wait in its queue, one per action, as shipped.
    assert _handled([10, 15, 1], False) == ["received=none", "reload", "shutdown"]


def _ipv6_on_the_wire(fixed: bool) -> tuple[int, list[tuple[str, str, str, str]]]:
    """Announce 300 IPv6 routes (two attribute sets, two next hops), then withdraw them all:
    the messages it takes, and every (action, prefix, next hop, attributes) they carry."""
    from exabgp.bgp.message.direction import Direction

    if fixed:
        launcher.apply({})
    launcher._silence_log()
    negotiated = _negotiated()
    negotiated.families = [(AFI.ipv6, SAFI.unicast)]
    rib = OutgoingRIB(True, [(AFI.ipv6, SAFI.unicast)])
    plain, tagged = Attributes(), Attributes()
    tagged.add(Origin(Origin.IGP))
    for i in range(300):
        nlri = INET(AFI.ipv6, SAFI.unicast, Action.ANNOUNCE)
        nlri.cidr = CIDR(IP.pton(f"2001:db8::{i + 1:x}"), 128)
        nlri.nexthop = IP.create(f"2001:db8:ff::{i % 2 + 1}")
        rib.add_to_rib(Change(nlri, tagged if i % 3 else plain))
    carried, messages = [], 0
    for step in ("announce", "withdraw"):
        if step == "withdraw":
            rib.withdraw()
        for update in rib.updates(True):
            for raw in update.messages(negotiated):
                messages += 1
                decoded = Update.unpack_message(bytes(raw)[19:], Direction.OUT, negotiated)
                carried += [
                    (step, str(n.cidr), str(n.nexthop), str(decoded.attributes))
                    for n in decoded.nlris
                ]
    return messages, sorted(carried)


def test_ipv6_routes_of_one_attribute_set_share_updates_with_the_fix() -> None:
    shipped_messages, shipped = _ipv6_on_the_wire(fixed=False)
    messages, carried = _ipv6_on_the_wire(fixed=True)
    assert shipped_messages == 600  # ExaBGP as shipped: an UPDATE per route, each way
    assert messages <= 8  # per way: a message per attribute set and next hop
    assert carried == shipped and len(carried) == 600


def _waits(d: Delay, attempts: int) -> list[int]:
    """Seconds the timer holds off the next connection after each failed attempt."""
    out = []
    for _ in range(attempts):
        before = time.time()
        d.increase()
        out.append(round(d._time - before))
    return out


def test_connect_retry_is_a_fixed_interval() -> None:
    assert launcher.apply({launcher.CONNECT_RETRY_ENV: "7"})[-1] == launcher.CONNECT_RETRY
    d = Delay()
    assert _waits(d, 5) == [7, 7, 7, 7, 7]
    assert d.backoff()


def test_without_connect_time_exabgp_keeps_its_own_backoff() -> None:
    launcher.apply({})
    assert _waits(Delay(), 6) == [0, 1, 2, 3, 4, 5]


STATIC = """
neighbor 127.1.0.1 {
  router-id 127.1.0.2;
  local-address 127.1.0.2;
  local-as 64600;
  peer-as 64512;
  family { ipv4 unicast; }
  static {
    attributes next-hop 192.0.2.11 community [64512:7] nlri 198.51.100.1/32 198.51.100.2/32;
    route 198.51.100.3/32 next-hop 192.0.2.11;
  }
}
"""


def _announced(tmp_path: Path) -> list[str]:
    conf = tmp_path / "exabgp.conf"
    conf.write_text(STATIC)
    log.init(getenv())  # as `exabgp validate` does before parsing
    c = Configuration([str(conf)])
    assert c.reload(), c.error
    (neighbor,) = c.neighbors.values()
    return sorted(str(ch.nlri.cidr) for ch in neighbor.rib.outgoing.cached_changes())


def test_static_attributes_lines_are_announced_with_the_fix(tmp_path: Path) -> None:
    assert _announced(tmp_path) == ["198.51.100.3/32"]  # ExaBGP 5.0.15 as shipped
    launcher.apply({})
    assert _announced(tmp_path) == ["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]


def test_a_grouped_seed_loads_every_route_with_its_attributes(tmp_path: Path) -> None:
    launcher.apply({})
    plain, tagged = Attrs("192.0.2.11"), Attrs("192.0.2.11", ("64512:7",), ("64512:1:2",), 200)
    seed = {f"198.51.{i // 250}.{i % 250 + 1}/32": tagged if i % 3 else plain for i in range(1200)}
    peer = Peer("tor", 64512, 64512, "127.1.0.1")
    conf = tmp_path / "exabgp.conf"
    conf.write_text(render(peer, "127.1.0.2", "127.1.0.2", ["/bin/true"], seed, grouped=True))
    assert conf.read_text().count(" nlri ") == 3  # 400 + 800 prefixes in lines of <= 500
    log.init(getenv())
    c = Configuration([str(conf)])
    assert c.reload(), c.error
    (neighbor,) = c.neighbors.values()
    loaded = {str(ch.nlri.cidr): ch for ch in neighbor.rib.outgoing.cached_changes()}
    assert loaded.keys() == seed.keys()
    some = loaded["198.51.0.2/32"].attributes  # i == 1: tagged
    assert "64512:7" in str(some) and "200" in str(some)
