"""ExaBGP's own entry point, with ten small fixes applied first; argv as for ``exabgp``.

The announcer runs ExaBGP as ``python launcher.py server <config>`` instead of the
``exabgp`` script so that ten changes, each a few lines and each written so it could
go upstream unchanged, are in place before ExaBGP starts. They are written against
one ExaBGP release. At start the launcher applies them, then runs each on ExaBGP's own
classes; if the release differs, a method a fix replaces whole is not the source it was
written against, or a fix did not take hold, it exits with the reason
on stderr (ExaBGP's log) instead of running an ExaBGP that is not the one the
announcer was built around. An operator who wants an unpatched ExaBGP gives its
executable with ``--exabgp`` and gets none of the fixes. Figures: bench/ANNOUNCER.md.

1. ``Neighbor.remove_self`` deep-copies every route it is handed, to replace a
   ``next-hop self`` placeholder on the copy. Our routes never use ``next-hop self``,
   so the copy is pure cost: most of ExaBGP's CPU time loading a large seed, and one
   copy of the attributes per route where the API had parsed one for a whole batch.
   The fix copies only when there is a ``self`` to resolve. It is safe because every
   place that later mutates a route in the RIB (``del_from_rib``) copies it first.
2. ``Delay``, the reconnect timer, backs off exponentially to 60 s and cannot be
   configured. BGPPeer's ``connectTime`` (MetalLB's field: the ConnectRetry timer of
   RFC 4271) sets ``exalb_connect_retry`` in ExaBGP's environment, and the patched
   timer then waits exactly that long between attempts. Unset, ExaBGP's own back-off
   is kept (and this fix is not applied).
3. A static ``attributes <attrs> nlri <prefix> <prefix> ...;`` line (one attribute set
   for many prefixes, the config twin of the API command we batch with) is parsed but
   its routes are never announced: they are left with no action (neither announce nor
   withdraw). The fix gives them the action a ``route`` line gets. With it, the seed of
   a (re)started ExaBGP is one line per attribute set and 500 prefixes instead of one
   per route, and the routes share one attribute set. The launcher writes the names of
   the fixes that hold to the file named by ``exalb_fixes_report``; the announcer
   writes that form only when this fix is among them, and a route per line otherwise.
4. ExaBGP runs API commands as generators, ``ASYNC.LIMIT`` (50) steps per reactor turn,
   and one step is one prefix of an ``announce/withdraw attributes ... nlri ...`` command.
   A reactor turn with nothing else to do still waits up to 10 ms on its poller, so bulk
   changes crawl at a few thousand prefixes a second: withdrawing every route on
   SIGTERM, before the Cease, took seconds. The fix raises the limit to
   ``API_STEPS_PER_TURN``; one step is an in-memory RIB change of microseconds, so even
   a full turn holds the reactor (keepalives, other peers) for a fraction of a second.
5. ``OutgoingRIB.del_from_rib`` (ExaBGP's ``clear adj-rib out``, the announcer's
   withdraw-all on shutdown) deep-copies each route, attributes included, to mark the
   copy withdrawn. The fix copies only the NLRI whose action it changes and keeps the
   route's attributes, which a withdrawal never changes (nor packs).
6. ``Update._split_nlris`` sorts an UPDATE's NLRIs with ``NLRI.__lt__``, which builds
   both index strings on every comparison (~5 per NLRI for 10,000). The fix sorts by
   the same index, computed once per NLRI: the same order, a fraction of the work.
7. ``Protocol.send`` decodes every UPDATE it sends back into objects whenever the API
   asked to see sent UPDATEs, even when it asked for the raw packets only (``send {
   packets; }``), which need no decoding. The announcer reads the withdrawn prefixes of
   sent UPDATEs from the packets (it must know every withdrawal was on the wire before
   its Cease), so the decoding was a large share of ExaBGP's work withdrawing everything
   on SIGTERM. The fix decodes only when the parsed form is asked for.
8. ``OutgoingRIB.withdraw`` (``clear adj-rib out``) withdraws route by route through
   ``del_from_rib``, which computes each route's index three times and builds five
   ``Family`` objects for it, where the cache it walks is already keyed by both. The fix
   queues the same withdrawals with the keys the cache holds: most of ExaBGP's work
   changing its RIB on SIGTERM.
9. ExaBGP's signal handlers log (``SIGTERM received``, ``scheduling shutdown``). A
   handler runs between two bytecodes of the main thread, possibly inside a write to
   stderr that blocks because the announcer, busy shutting down, has not read its pipe
   yet. The handler's own write then raises ``RuntimeError`` (a re-entrant write, or
   nested handlers up to the recursion limit) in the reactor, wherever it was, and the
   shutdown is never scheduled: ExaBGP ignores that SIGTERM and is killed 5 s later,
   without its Cease. The fix records the signal without logging; the reactor logs its
   shutdown when it acts on it.
10. ``OutgoingRIB.updates`` groups the routes of one attribute set into one UPDATE for
   IPv4 unicast only (with ``group-updates``, ExaBGP's default); every IPv6 unicast
   route got an UPDATE of its own: 10,000 messages, each reported to the announcer, to
   withdraw 10,000 IPv6 routes on SIGTERM. ``Update.messages`` already packs many
   IPv6 NLRIs into MP_REACH_NLRI (one per next hop) and MP_UNREACH_NLRI attributes up
   to the message size, so the fix merges consecutive IPv6 unicast UPDATEs of one
   attribute set, in order, into one ``Update``.

Runs as a script (not ``-m announcer...``) so ExaBGP's process imports nothing of ours.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

WRITTEN_FOR = "5.0.15"
CONNECT_RETRY_ENV = "exalb_connect_retry"
AWAIT_GO_ENV = "exalb_await_go"  # set: import everything, then wait for a line on stdin
REPORT_ENV = "exalb_fixes_report"  # a file: the fixes that hold, as a JSON list of names

REMOVE_SELF = "remove-self"
STATIC_ATTRIBUTES = "static-attributes"
CONNECT_RETRY = "connect-retry"
API_STEPS = "api-steps"
WITHDRAW_COPY = "withdraw-copy"
SORT_KEY = "sort-key"
SEND_UNPARSED = "send-unparsed"
BULK_WITHDRAW = "bulk-withdraw"
QUIET_SIGNALS = "quiet-signals"
GROUP_IPV6 = "group-ipv6"

API_STEPS_PER_TURN = 2000


# The methods the fixes replace whole, as the pinned release has them (sha256 of the source,
# first 16 hex digits): a release that changed one would silently lose that change.
REPLACED_SOURCE = {
    "OutgoingRIB.del_from_rib": "ea441a8f2781ba0c",
    "Update._split_nlris": "9d693e7f9bc15a49",
    "Protocol.send": "b5b0461338ed6d4b",
    "OutgoingRIB.withdraw": "7357bcddfa523751",
    "Signal._defer_or_schedule": "59ea7274b5dc3a65",
    "Signal.sigterm": "8a93960dc0fed8e7",
    "Signal.sighup": "79be1678325b0f71",
    "Signal.sigalrm": "97c866417bb2ece2",
    "Signal.sigusr1": "bbf8ebc7f2287ad3",
    "Signal.sigusr2": "92328099948dc952",
}

# ExaBGP's signal handlers and the action each schedules (``Signal``'s constants).
SIGNAL_ACTIONS = {
    "sigterm": "SHUTDOWN",
    "sighup": "SHUTDOWN",
    "sigalrm": "RESTART",
    "sigusr1": "RELOAD",
    "sigusr2": "FULL_RELOAD",
}


class FixError(Exception):
    """A fix could not be applied or did not take hold: ExaBGP is not started."""


def expect_source(method: Callable[..., Any]) -> None:
    """FixError unless ``method`` is the source the fix replacing it was written against."""
    name = method.__qualname__
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]
    if REPLACED_SOURCE.get(name) != digest:
        raise FixError(f"{name} is not the source its fix was written against")


def patch_remove_self() -> None:
    """Copy a route only when its ``next-hop self`` must be replaced on the copy."""
    from exabgp.bgp.neighbor import Neighbor

    original = Neighbor.remove_self

    def remove_self(self: Any, change: Any) -> Any:
        if not change.nlri.nexthop.SELF:
            return change
        return original(self, change)

    Neighbor.remove_self = remove_self


def patch_connect_retry(seconds: float) -> None:
    """A fixed wait of ``seconds`` between connection attempts (RFC 4271 ConnectRetryTimer)."""
    from exabgp.reactor.delay import Delay

    def increase(self: Any) -> None:
        self._time = time.time() + seconds
        self._next = seconds

    Delay.increase = increase


def patch_static_attributes() -> None:
    """Routes of a static ``attributes ... nlri ...`` line get the action of a ``route`` line."""
    from exabgp.bgp.message import Action
    from exabgp.configuration.static import ParseStatic

    original = ParseStatic.known["attributes"]

    def attributes(tokeniser: Any) -> Any:
        changes = original(tokeniser)
        action = Action.ANNOUNCE if tokeniser.announce else Action.WITHDRAW
        for change in changes:
            change.nlri.action = action
        return changes

    ParseStatic.known["attributes"] = attributes


def patch_api_steps() -> None:
    """Run up to ``API_STEPS_PER_TURN`` steps of API commands per reactor turn."""
    from exabgp.reactor.asynchronous import ASYNC

    ASYNC.LIMIT = API_STEPS_PER_TURN


def patch_withdraw_copy() -> None:
    """A withdrawal copies the NLRI whose action it changes, not the route's attributes."""
    from copy import copy

    from exabgp.bgp.message import Action
    from exabgp.logger import log
    from exabgp.rib.change import Change
    from exabgp.rib.outgoing import OutgoingRIB, RIBdict

    expect_source(OutgoingRIB.del_from_rib)

    def del_from_rib(self: Any, change: Any) -> Any:
        log.debug(lambda: f"remove {change}", "rib")
        change_index = change.index()
        change_family = change.nlri.family().afi_safi()
        # remove a previous announcement if cancelled or replaced before being sent
        prev_change = self._new_nlri.get(change_index, None)
        if prev_change:
            per_attr = self._new_attr_af_nlri.setdefault(prev_change.attributes.index(), {})
            per_attr.setdefault(change_family, RIBdict({})).pop(prev_change.index(), None)
        nlri = copy(change.nlri)
        nlri.action = Action.WITHDRAW
        return self._update_rib(Change(nlri, change.attributes))

    OutgoingRIB.del_from_rib = del_from_rib


def patch_bulk_withdraw() -> None:
    """Withdraw every cached route with the family and index the cache is keyed by."""
    from copy import copy

    from exabgp.bgp.message import Action
    from exabgp.rib.change import Change
    from exabgp.rib.outgoing import OutgoingRIB, RIBdict

    expect_source(OutgoingRIB.withdraw)

    def withdraw(self: Any, families: Any = None) -> None:
        requested = set(families or self.families).intersection(self.families)
        for family in requested:
            cached = self._seen.get(family, {})
            for index, change in list(cached.items()):
                # a queued announcement of the same route is replaced, as del_from_rib does
                queued = self._new_nlri.get(index)
                if queued is not None:
                    per_attr = self._new_attr_af_nlri.setdefault(queued.attributes.index(), {})
                    per_attr.setdefault(family, RIBdict({})).pop(index, None)
                nlri = copy(change.nlri)
                nlri.action = Action.WITHDRAW
                attributes = change.attributes
                attr_index = attributes.index()
                per_attr = self._new_attr_af_nlri.setdefault(attr_index, {})
                per_attr.setdefault(family, RIBdict({}))[index] = Change(nlri, attributes)
                self._new_nlri[index] = per_attr[family][index]
                self._new_attribute[attr_index] = attributes
                del cached[index]  # update_cache of a withdrawal

    OutgoingRIB.withdraw = withdraw


def patch_sort_key() -> None:
    """Order an UPDATE's NLRIs by their index computed once each, not once per comparison."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update import Update
    from exabgp.protocol.family import AFI, SAFI

    expect_source(Update._split_nlris)

    def _split_nlris(self: Any, negotiated: Any) -> tuple[list[Any], dict[Any, Any]]:
        nlris: list[Any] = []
        mp_nlris: dict[Any, Any] = {}
        for nlri in sorted(self.nlris, key=lambda n: n.index()):
            if nlri.family().afi_safi() not in negotiated.families:
                continue
            native = nlri.afi == AFI.ipv4 and nlri.safi == SAFI.unicast
            if native and nlri.action == Action.WITHDRAW:
                nlris.append(nlri)
                continue
            if native and nlri.action == Action.ANNOUNCE and nlri.nexthop.afi == AFI.ipv4:
                nlris.append(nlri)
                continue
            # MP_UNREACH carries no next hop, including bare multicast withdrawals.
            if (
                nlri.action == Action.WITHDRAW
                or nlri.nexthop.afi != AFI.undefined
                or nlri.safi in (SAFI.flow_ip, SAFI.flow_vpn)
            ):
                per_family = mp_nlris.setdefault(nlri.family().afi_safi(), {})
                per_family.setdefault(nlri.action, []).append(nlri)
                continue
            raise ValueError(f"unexpected nlri definition ({nlri})")
        return nlris, mp_nlris

    Update._split_nlris = _split_nlris


def patch_send_unparsed() -> None:
    """Decode a sent UPDATE for the API only when the parsed form is asked for."""
    from exabgp.bgp.message import Message, Update
    from exabgp.bgp.message.direction import Direction
    from exabgp.reactor.protocol import Protocol

    expect_source(Protocol.send)

    def send(self: Any, raw: bytes) -> Any:
        code = f"send-{Message.CODE.short(raw[18])}"
        self.peer.stats[code] += 1
        api = self.neighbor.api
        if api.get(code, False):
            if api["send-parsed"] or api["send-consolidate"]:
                message = Update.unpack_message(raw[19:], Direction.OUT, self.negotiated)
                self._to_api("send", message, raw)
            elif api["send-packets"]:
                negotiated = self.negotiated if api["negotiated"] else None
                self.peer.reactor.processes.packets(
                    self.peer.neighbor, "send", raw[18], negotiated, raw[:19], raw[19:]
                )
        yield from self.connection.writer(raw)

    Protocol.send = send


def patch_quiet_signals() -> None:
    """Signal handlers that record the signal and write nothing."""
    from exabgp.reactor.interrupt import Signal

    expect_source(Signal._defer_or_schedule)
    for name in SIGNAL_ACTIONS:
        expect_source(getattr(Signal, name))

    def schedule(self: Any, action: int, signum: int, _name: str) -> None:
        if not self._ready:  # the reactor takes it up once it is ready
            if all(pending != action for pending, _ in self._pending):
                self._pending.append((action, signum))
        elif not self.received:  # otherwise the previous signal is still being handled
            self.received, self.number = action, signum

    def handler(action: int) -> Callable[[Any, int, Any], None]:
        def handle(self: Any, signum: int, _frame: Any) -> None:
            self._defer_or_schedule(action, signum, "")

        return handle

    Signal._defer_or_schedule = schedule
    for name, action in SIGNAL_ACTIONS.items():
        setattr(Signal, name, handler(getattr(Signal, action)))


def patch_group_ipv6() -> None:
    """Merge the one-route UPDATEs ExaBGP makes for IPv6 unicast, per attribute set."""
    from exabgp.bgp.message.update import Update
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    original = OutgoingRIB.updates
    ipv6_unicast = (AFI.ipv6, SAFI.unicast)

    def single_ipv6(message: Any) -> bool:
        return (
            isinstance(message, Update)
            and len(message.nlris) == 1
            and message.nlris[0].family().afi_safi() == ipv6_unicast
        )

    def updates(self: Any, grouped: bool) -> Any:
        attributes: Any = None  # of the run of IPv6 UPDATEs being merged
        nlris: list[Any] = []
        for message in original(self, grouped):
            if grouped and single_ipv6(message):
                if nlris and message.attributes is attributes:
                    nlris.append(message.nlris[0])
                    continue
                if nlris:
                    yield Update(nlris, attributes)
                attributes, nlris = message.attributes, [message.nlris[0]]
                continue
            if nlris:
                yield Update(nlris, attributes)
                nlris = []
            yield message
        if nlris:
            yield Update(nlris, attributes)

    OutgoingRIB.updates = updates


def release_matches() -> bool:
    """Whether the installed ExaBGP is the release the fixes were written against."""
    try:
        return metadata.version("exabgp") == WRITTEN_FOR
    except metadata.PackageNotFoundError:
        return False


def apply(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Apply every fix (the connect retry only when asked for); the names applied."""
    if not release_matches():
        raise FixError(f"ExaBGP is not {WRITTEN_FOR}, the release the fixes were written for")
    patch_remove_self()
    patch_static_attributes()
    patch_api_steps()
    patch_withdraw_copy()
    patch_sort_key()
    patch_send_unparsed()
    patch_bulk_withdraw()
    patch_quiet_signals()
    patch_group_ipv6()
    applied = [REMOVE_SELF, STATIC_ATTRIBUTES, API_STEPS, WITHDRAW_COPY, SORT_KEY]
    applied += [SEND_UNPARSED, BULK_WITHDRAW, QUIET_SIGNALS, GROUP_IPV6]
    retry = environ.get(CONNECT_RETRY_ENV)
    if retry:
        patch_connect_retry(float(retry))
        applied.append(CONNECT_RETRY)
    return applied


def verify(applied: list[str], environ: Mapping[str, str] = os.environ) -> None:
    """Run each applied fix on ExaBGP's own classes; FixError names one that did not hold."""
    checks: dict[str, Callable[[], bool]] = {
        REMOVE_SELF: _remove_self_holds,
        STATIC_ATTRIBUTES: _static_attributes_hold,
        API_STEPS: _api_steps_hold,
        WITHDRAW_COPY: _withdraw_copy_holds,
        SORT_KEY: _sort_key_holds,
        SEND_UNPARSED: _send_unparsed_holds,
        BULK_WITHDRAW: _bulk_withdraw_holds,
        QUIET_SIGNALS: _quiet_signals_hold,
        GROUP_IPV6: _group_ipv6_holds,
        CONNECT_RETRY: lambda: _connect_retry_holds(float(environ[CONNECT_RETRY_ENV])),
    }
    for name in applied:
        if not checks[name]():
            raise FixError(f"the {name} fix did not take hold")


def _remove_self_holds() -> bool:
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.bgp.message.update.nlri import CIDR, INET
    from exabgp.bgp.neighbor import Neighbor
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP
    from exabgp.rib.change import Change

    nlri = INET(AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
    nlri.cidr = CIDR(IP.pton("192.0.2.1"), 32)
    nlri.nexthop = IP.create("192.0.2.2")
    change = Change(nlri, Attributes())
    return bool(Neighbor().remove_self(change) is change)


_STATIC_CHECK = """neighbor 192.0.2.3 {
  router-id 192.0.2.4; local-address 192.0.2.4; local-as 64512; peer-as 64512;
  family { ipv4 unicast; }
  static { attributes next-hop 192.0.2.4 nlri 192.0.2.5/32 192.0.2.6/32; }
}"""


def _silence_log() -> None:
    """ExaBGP's logger, initialised and silent for a check (its main initialises it again)."""
    from exabgp.environment import getenv
    from exabgp.logger import log

    env = getenv()
    enabled, env.log.enable = env.log.enable, False
    log.init(env)
    env.log.enable = enabled


def _static_attributes_hold() -> bool:
    from exabgp.configuration.configuration import Configuration

    _silence_log()  # this check's config is none of the operator's business
    config = Configuration([_STATIC_CHECK], text=True)
    if not config.reload():
        return False
    (neighbor,) = config.neighbors.values()
    announced = {str(c.nlri.cidr) for c in neighbor.rib.outgoing.cached_changes()}
    neighbor.rib.uncache()  # ExaBGP keeps RIBs by neighbor across reloads: leave none behind
    return announced == {"192.0.2.5/32", "192.0.2.6/32"}


def _api_steps_hold() -> bool:
    """One reactor turn of ExaBGP's scheduler runs a whole command of that many steps."""
    from exabgp.reactor.asynchronous import ASYNC

    done: list[int] = []

    def command() -> Any:
        for step in range(API_STEPS_PER_TURN):
            done.append(step)
            yield False

    _silence_log()  # scheduling logs the command at debug level
    scheduler = ASYNC()
    scheduler.schedule("exalb-check", "check", command())
    scheduler.run()
    return len(done) == API_STEPS_PER_TURN


def _withdraw_copy_holds() -> bool:
    """A withdrawn route is queued as a withdrawal sharing the route's attributes."""
    from exabgp.bgp.message import Action
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    _silence_log()  # RIB changes log at debug level
    route = _inet_change("192.0.2.5")
    rib = OutgoingRIB(True, [(AFI.ipv4, SAFI.unicast)])
    rib.add_to_rib(route)
    rib.del_from_rib(route)
    (queued,) = rib.queued_changes()
    return bool(
        queued.nlri.action == Action.WITHDRAW
        and route.nlri.action == Action.ANNOUNCE
        and queued.attributes is route.attributes
    )


def _bulk_withdraw_holds() -> bool:
    """A withdraw-all queues what withdrawing each route through del_from_rib queues,
    without going through it route by route."""
    from exabgp.bgp.message import Action
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    _silence_log()  # RIB changes log at debug level

    def rib() -> Any:
        out = OutgoingRIB(True, [(AFI.ipv4, SAFI.unicast)])
        for address in ("192.0.2.5", "192.0.2.6", "192.0.2.7"):
            out.add_to_rib(_inet_change(address))
        list(out.updates(False))  # sent: cached, nothing queued
        out.add_to_rib(_inet_change("192.0.2.8"))  # queued, not yet sent
        return out

    def queued(r: Any) -> list[tuple[bytes, Any, Any]]:
        return sorted((c.index(), c.nlri.action, c.attributes) for c in r.queued_changes())

    by_route, bulk = rib(), rib()
    for change in list(by_route.cached_changes(None, [Action.ANNOUNCE, Action.WITHDRAW])):
        by_route.del_from_rib(change)
    routed: list[Any] = []
    bulk.del_from_rib = routed.append  # ExaBGP's own withdraw goes through it
    bulk.withdraw()
    withdrawn = {Action.WITHDRAW} == {c.nlri.action for c in bulk.queued_changes()}
    same = queued(bulk) == queued(by_route) and not list(bulk.cached_changes())
    return not routed and withdrawn and same


def _quiet_signals_hold() -> bool:
    """A SIGTERM schedules the shutdown with ExaBGP's log unusable (no OS handler is set)."""
    from exabgp.logger import log
    from exabgp.reactor.interrupt import Signal

    def refuse(*_: Any, **__: Any) -> None:
        raise RuntimeError("a signal handler wrote to the log")

    handlers = Signal.__new__(Signal)  # not __init__: that installs the handlers for real
    handlers.received, handlers.number, handlers._ready, handlers._pending = 0, 0, True, []
    saved = inspect.getattr_static(log, "critical")
    log.critical = refuse
    try:
        handlers.sigterm(15, None)
        handlers.sigusr1(10, None)  # ignored: the shutdown is still to be handled
    except RuntimeError:
        return False
    finally:
        log.critical = saved
    return bool(handlers.received == Signal.SHUTDOWN and handlers.number == 15)


def _group_ipv6_holds() -> bool:
    """Three IPv6 routes of one attribute set queued, withdrawn: one UPDATE each time."""
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.rib.outgoing import OutgoingRIB

    _silence_log()
    rib = OutgoingRIB(True, [(AFI.ipv6, SAFI.unicast)])
    shared = Attributes()
    for i in range(3):
        rib.add_to_rib(_inet_change(f"2001:db8::{i + 1}", attributes=shared))
    announced = [len(u.nlris) for u in rib.updates(True)]
    rib.withdraw()
    withdrawn = [len(u.nlris) for u in rib.updates(True)]
    return announced == withdrawn == [3]


def _sort_key_holds() -> bool:
    """An UPDATE's NLRIs come out sorted, with one index computation per NLRI."""
    from exabgp.bgp.message.update import Update
    from exabgp.protocol.family import AFI, SAFI

    calls: list[bytes] = []
    nlris = [_inet_change(f"192.0.2.{i}", calls).nlri for i in (9, 7, 8)]
    negotiated = type("Negotiated", (), {"families": [(AFI.ipv4, SAFI.unicast)]})()
    native, _ = Update(nlris, None)._split_nlris(negotiated)
    return [str(n.cidr) for n in native] == [f"192.0.2.{i}/32" for i in (7, 8, 9)] and len(
        calls
    ) == len(nlris)


def _send_unparsed_holds() -> bool:
    """A sent UPDATE reaches the API as its packet, undecoded; decoded when that is asked for.

    The packet sent raw is one ExaBGP cannot decode (its withdrawn-routes length runs
    past its end): decoding it anyway raises.
    """
    from collections import Counter
    from types import SimpleNamespace

    from exabgp.bgp.message import EOR
    from exabgp.reactor.protocol import Protocol

    header = b"\xff" * 16 + b"\x00\x17\x02"
    undecodable, end_of_rib = header + b"\xff\xff\x00\x00", header + b"\x00\x00\x00\x00"
    packets: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    processes = SimpleNamespace(
        packets=lambda *args: packets.append(args), message=lambda *args: messages.append(args)
    )
    api = {"send-update": True, "send-parsed": False, "send-consolidate": False}
    api.update({"send-packets": True, "negotiated": False})
    proto = Protocol.__new__(Protocol)
    proto.peer = SimpleNamespace(stats=Counter(), reactor=SimpleNamespace(processes=processes))
    proto.peer.neighbor = proto.neighbor = SimpleNamespace(api=api)
    proto.negotiated = SimpleNamespace(families=[])
    proto.connection = SimpleNamespace(writer=lambda data: iter(()))
    _silence_log()  # decoding logs at debug level
    try:
        list(proto.send(undecodable))
    except Exception:  # decoded although only the packet was asked for
        return False
    api.update({"send-parsed": True, "send-packets": False})
    list(proto.send(end_of_rib))
    raw = [p[-2:] for p in packets] == [(undecodable[:19], undecodable[19:])]
    return raw and [type(m[3]) for m in messages] == [EOR]


def _inet_change(
    address: str, index_calls: list[bytes] | None = None, attributes: Any = None
) -> Any:
    """An announced /32 or /128 (next hop 192.0.2.2 or 2001:db8::ff), with ``attributes``
    (a new empty set if None); ``index_calls`` records its NLRI's index()."""
    from exabgp.bgp.message import Action
    from exabgp.bgp.message.update.attribute import Attributes
    from exabgp.bgp.message.update.nlri import CIDR, INET
    from exabgp.protocol.family import AFI, SAFI
    from exabgp.protocol.ip import IP
    from exabgp.rib.change import Change

    v6 = ":" in address
    nlri = INET(AFI.ipv6 if v6 else AFI.ipv4, SAFI.unicast, Action.ANNOUNCE)
    nlri.cidr = CIDR(IP.pton(address), 128 if v6 else 32)
    nlri.nexthop = IP.create("2001:db8::ff" if v6 else "192.0.2.2")
    if index_calls is not None:
        index = nlri.index

        def counted() -> bytes:
            value: bytes = index()
            index_calls.append(value)
            return value

        nlri.index = counted
    return Change(nlri, Attributes() if attributes is None else attributes)


def _connect_retry_holds(seconds: float) -> bool:
    from exabgp.reactor.delay import Delay

    delay = Delay()
    delay.increase()
    delay.increase()
    return bool(delay._next == seconds)


def report(applied: list[str], path: str | None) -> None:
    """Tell the announcer which fixes hold (it seeds grouped routes only with that fix)."""
    if not path:
        return
    partial = f"{path}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(applied, f)
    os.replace(partial, path)  # the announcer never reads half a report


def await_go() -> bool:
    """Block until the announcer says the config is written, then detach stdin.

    Started this way, ExaBGP's interpreter start-up and imports overlap the
    announcer's first decision (a cold start) or the previous ExaBGP's run (the
    spare for a restart) instead of following them. False when stdin closed
    without "go": the announcer is gone, and no ExaBGP may start.
    """
    if sys.stdin.readline().strip() != "go":
        return False
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return True


def main() -> int:
    try:
        applied = apply()
        verify(applied)
    except FixError as exc:
        print(
            f"exalb launcher: {exc}; not starting ExaBGP. To run an ExaBGP without any of "
            "the fixes, give its executable with --exabgp.",
            file=sys.stderr,
        )
        return 3
    print(f"exalb launcher: fixes in place: {', '.join(applied)}", file=sys.stderr)
    report(applied, os.environ.get(REPORT_ENV))
    from exabgp.application.main import main as exabgp_main

    if os.environ.get(AWAIT_GO_ENV) and not await_go():
        print("exalb launcher: the announcer went away; not starting ExaBGP", file=sys.stderr)
        return 0
    sys.argv[0] = "exabgp"
    result: int = exabgp_main()
    return result


if __name__ == "__main__":
    sys.exit(main())
