"""Sent BGP messages read from their bytes, against the packets ExaBGP itself builds."""

from __future__ import annotations

import ipaddress

import pytest
from exabgp.bgp.message import EOR, Action, Notify
from exabgp.bgp.message.open.capability import Negotiated
from exabgp.bgp.message.update import Update
from exabgp.bgp.message.update.attribute import Attributes
from exabgp.bgp.message.update.nlri import CIDR, INET
from exabgp.bgp.neighbor import Neighbor
from exabgp.protocol.family import AFI, SAFI
from exabgp.protocol.ip import IP
from hypothesis import given, settings
from hypothesis import strategies as st

from announcer.core.session import Notification
from announcer.exabgp import launcher
from announcer.exabgp.packets import MalformedPacket, notification_sent, update_sent

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _negotiated() -> Negotiated:
    neighbor = Neighbor()
    neighbor["router-id"] = IP.create("192.0.2.9")
    neighbor["local-address"] = IP.create("192.0.2.9")
    negotiated = Negotiated(neighbor)
    negotiated.families = [(AFI.ipv4, SAFI.unicast), (AFI.ipv6, SAFI.unicast)]
    return negotiated


def _withdrawn(net: Network) -> INET:
    nlri = INET(AFI.ipv4 if net.version == 4 else AFI.ipv6, SAFI.unicast, Action.WITHDRAW)
    nlri.cidr = CIDR(net.network_address.packed, net.prefixlen)
    return nlri


def _bodies(nets: list[Network]) -> list[bytes]:
    """The UPDATE bodies ExaBGP packs to withdraw ``nets`` (several when they do not fit one)."""
    launcher._silence_log()
    update = Update([_withdrawn(n) for n in nets], Attributes())
    return [bytes(raw[19:]) for raw in update.messages(_negotiated(), True)]


v4 = st.builds(
    lambda a, n: ipaddress.IPv4Network((a, n), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6 = st.builds(
    lambda a, n: ipaddress.IPv6Network((a, n), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(v4, v6), min_size=1, max_size=400, unique=True))
def test_the_prefixes_exabgp_withdraws_are_read_back_as_the_announcer_writes_them(
    nets: list[Network],
) -> None:
    read = [p for body in _bodies(nets) for p in update_sent(body)]
    # The announcer's prefixes are ipaddress's text: the ledger must recognise each one.
    assert sorted(read) == sorted(str(n) for n in nets)


def test_ten_thousand_withdrawals_in_a_few_full_updates() -> None:
    nets = [ipaddress.ip_network(f"198.18.{i // 250}.{i % 250}/32") for i in range(10_000)]
    bodies = _bodies(nets)
    assert 10 <= len(bodies) <= 20  # ~800 /32s in a 4,096-byte UPDATE
    assert sum(len(update_sent(b)) for b in bodies) == 10_000


@pytest.mark.parametrize(
    ("afi", "family"), [(AFI.ipv4, "ipv4 unicast"), (AFI.ipv6, "ipv6 unicast")]
)
def test_an_end_of_rib_is_recognised(afi: AFI, family: str) -> None:
    raw = EOR(afi, SAFI.unicast).message(_negotiated())
    assert update_sent(raw[19:]) == family


def test_a_cease_with_its_shutdown_communication() -> None:
    raw = Notify(6, 2, "node-1 is stopping").message()
    assert notification_sent(raw[19:]) == Notification("sent", 6, 2, "node-1 is stopping")
    assert notification_sent(Notify(6, 3).message()[19:]) == Notification("sent", 6, 3, "")


@pytest.mark.parametrize(
    "body",
    [
        b"\x00",  # no room for the withdrawn-routes length
        b"\x00\x05\x20\xc6\x33\x64\x00\x00",  # withdrawn routes past the end
        b"\x00\x02\x21\xc6\x00\x00",  # a 33-bit IPv4 prefix
        b"\x00\x00\x00\x04\x80\x0f\x05\x00",  # attribute past the attributes
        b"\x00\x00\x00\x04\x80\x0f\x01\x00",  # MP_UNREACH without its AFI and SAFI
    ],
)
def test_a_malformed_update_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedPacket):
        update_sent(body)


def test_a_notification_without_its_codes_is_refused() -> None:
    with pytest.raises(MalformedPacket):
        notification_sent(b"\x06")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_are_read_or_refused_as_malformed_never_a_crash(body: bytes) -> None:
    for read in (update_sent, notification_sent):
        try:
            read(body)
        except MalformedPacket:
            pass
