"""The two ExaBGP fixes the launcher applies, checked on ExaBGP's own classes.

Each test restores the patched class attributes afterwards (``monkeypatch``), so
nothing leaks into other tests that import ExaBGP.
"""

from __future__ import annotations

import time

import pytest
from exabgp.bgp.message import Action
from exabgp.bgp.message.update.attribute import Attributes
from exabgp.bgp.message.update.nlri import CIDR, INET
from exabgp.bgp.neighbor import Neighbor
from exabgp.protocol.family import AFI, SAFI
from exabgp.protocol.ip import IP, IPSelf
from exabgp.reactor.delay import Delay
from exabgp.rib.change import Change

from announcer.exabgp import launcher


@pytest.fixture(autouse=True)
def restore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Neighbor, "remove_self", Neighbor.remove_self)
    monkeypatch.setattr(Delay, "increase", Delay.increase)


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


def test_release_is_the_one_the_fixes_were_written_for() -> None:
    # pyproject pins ExaBGP; if the pin moves, the fixes must be re-checked against it.
    assert launcher.apply({}) == ["remove_self copies only for next-hop self"]


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


def test_connect_retry_is_a_fixed_interval() -> None:
    assert launcher.apply({launcher.CONNECT_RETRY_ENV: "7"})[-1] == "connect retry every 7s"
    d = Delay()
    waits = []
    for _ in range(5):
        before = time.time()
        d.increase()
        waits.append(round(d._time - before))
    assert waits == [7, 7, 7, 7, 7]
    assert d.backoff()


def test_without_connect_time_exabgp_keeps_its_own_backoff() -> None:
    launcher.apply({})
    d = Delay()
    waits = []
    for _ in range(6):
        before = time.time()
        d.increase()
        waits.append(round(d._time - before))
    assert waits == [0, 1, 2, 3, 4, 5]
