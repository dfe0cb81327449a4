"""RFC 5880 rules of the pure BFD session and packet codec, as properties and examples."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core.bfd import (
    SLOW_TX_US,
    TRANSITIONS,
    Diag,
    Malformed,
    Packet,
    Session,
    State,
    decode,
    encode,
)
from announcer.kube.convert import peer_from
from exalb.bgppeer import Timers, bfd_timers

u32 = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    state = draw(st.sampled_from(State))
    poll = draw(st.booleans())
    return Packet(
        state=state,
        diag=draw(st.sampled_from(Diag)),
        detect_mult=draw(st.integers(1, 255)),
        my_discr=draw(st.integers(1, 2**32 - 1)),
        your_discr=draw(u32)
        if state in (State.DOWN, State.ADMIN_DOWN)
        else draw(st.integers(1, 2**32 - 1)),
        desired_min_tx_us=draw(u32),
        required_min_rx_us=draw(u32),
        required_min_echo_rx_us=draw(u32),
        poll=poll,
        final=draw(st.booleans()) and not poll,
        cpi=draw(st.booleans()),
        demand=draw(st.booleans()),
    )


@given(packets())
def test_encode_decode_round_trips(p: Packet) -> None:
    data = encode(p)
    assert len(data) == 24
    assert decode(data) == p


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_are_dropped_with_a_reason(data: bytes) -> None:
    try:
        p = decode(data)
    except Malformed as exc:
        assert str(exc)
    else:
        assert p.my_discr != 0 and p.detect_mult != 0
        assert encode(p) == encode(decode(encode(p)))


def _with(p: Packet, byte: int, value: int) -> bytes:
    data = bytearray(encode(p))
    data[byte] = value
    return bytes(data)


GOOD = Packet(State.DOWN, Diag.NONE, 3, 7, 0, 300_000, 300_000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (encode(GOOD)[:23], "shorter than the 24-byte"),
        (_with(GOOD, 0, 2 << 5), "version 2"),
        (_with(GOOD, 1, (State.DOWN << 6) | 0x04), "authentication"),
        (_with(GOOD, 3, 20), "below 24"),
        (_with(GOOD, 3, 40), "exceeds"),
        (_with(GOOD, 2, 0), "multiplier is zero"),
        (_with(GOOD, 1, (State.DOWN << 6) | 0x01), "multipoint"),
        (encode(GOOD)[:4] + struct.pack("!I", 0) + encode(GOOD)[8:], "my discriminator is zero"),
        (_with(GOOD, 1, State.UP << 6), "your discriminator is zero in state UP"),
    ],
)
def test_malformed_packets_are_dropped_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed, match=reason):
        decode(data)


# One step of a session's life: a packet arrives, the clock moves, or an admin action.
steps = st.one_of(
    st.tuples(st.just("receive"), packets()),
    st.tuples(st.just("tick"), st.floats(min_value=0.0, max_value=5.0)),
    st.tuples(st.just("admin"), st.booleans()),
)


@given(st.lists(steps, max_size=60), st.sampled_from([Timers(), Timers(50, 50, 2)]))
def test_any_history_keeps_the_rfc_transitions(
    history: list[tuple[str, object]], timers: Timers
) -> None:
    s = Session(local_discr=1, timers=timers)
    now = 0.0
    for kind, arg in history:
        before = s.state
        if kind == "receive":
            assert isinstance(arg, Packet)
            s.receive(arg, now)
            if s.state == State.UP and before != State.UP:
                # Up needs the peer to have seen us: it said Init (or Up while we were Init)
                assert arg.state == State.INIT or (before == State.INIT and arg.state == State.UP)
            if s.state == State.DOWN and before != State.DOWN:
                assert s.diag == Diag.NEIGHBOR_SIGNALED_DOWN
        elif kind == "tick":
            assert isinstance(arg, float)
            now += arg
            s.expire(now)
            if s.state != before:
                assert s.state == State.DOWN and s.diag == Diag.DETECTION_TIME_EXPIRED
        elif arg:
            s.set_admin_down(now)
        else:
            s.set_admin_up(now)
        assert s.state == before or (before, s.state) in TRANSITIONS
        if kind != "admin":
            assert s.state != State.ADMIN_DOWN or before == State.ADMIN_DOWN
        p = s.transmit(now, 0.5)
        if p is not None:
            assert not (p.poll and p.final)
            assert p.state == s.state and p.my_discr == 1
            if s.state != State.UP:
                assert p.desired_min_tx_us >= SLOW_TX_US


def _peer(state: State, your: int = 1, tx: int = 300_000, **kw: bool) -> Packet:
    return Packet(state, Diag.NONE, 3, 99, your, tx, 300_000, **kw)


def test_three_way_handshake_then_detection_time_expiry() -> None:
    s = Session(local_discr=1, timers=Timers())
    s.receive(_peer(State.DOWN, your=0), 0.0)
    assert s.state == State.INIT and s.remote_discr == 99
    s.receive(_peer(State.UP), 0.1)
    assert s.state == State.UP
    assert s.detection_time() == pytest.approx(0.9)  # 3 x max(our 300 ms rx, their 300 ms tx)
    s.expire(0.99)
    assert s.state == State.UP
    s.expire(1.0)
    assert (s.state, s.diag, s.remote_discr) == (State.DOWN, Diag.DETECTION_TIME_EXPIRED, 0)


def test_detection_time_uses_the_slower_of_our_rx_and_their_tx() -> None:
    s = Session(local_discr=1, timers=Timers(min_rx_ms=100))
    s.receive(Packet(State.DOWN, Diag.NONE, 5, 99, 0, 1_000_000, 300_000), 0.0)
    assert s.detection_time() == pytest.approx(5.0)


def test_going_up_polls_to_the_fast_interval_and_final_ends_the_poll() -> None:
    s = Session(local_discr=1, timers=Timers())
    first = s.transmit(0.0, 0.0)
    assert first is not None and first.desired_min_tx_us == SLOW_TX_US and not first.poll
    s.receive(_peer(State.INIT), 0.1)
    assert s.state == State.UP
    p = s.transmit(0.1, 0.0)
    assert p is not None and p.poll and p.desired_min_tx_us == 300_000
    s.receive(_peer(State.UP, final=True), 0.2)
    p = s.transmit(0.5, 0.0)
    assert p is not None and not p.poll
    assert s.next_tx == pytest.approx(0.5 + 0.3 * 0.75)


def test_a_poll_is_answered_with_a_final_at_once() -> None:
    s = Session(local_discr=1, timers=Timers())
    s.transmit(0.0, 0.0)
    s.receive(_peer(State.DOWN, your=0, poll=True), 0.01)
    assert s.next_event() == float("-inf")
    p = s.transmit(0.01, 0.0)
    assert p is not None and p.final and not p.poll


def test_admin_down_from_the_peer_takes_us_down_with_its_diagnostic() -> None:
    s = Session(local_discr=1, timers=Timers())
    s.receive(_peer(State.INIT), 0.0)
    s.receive(_peer(State.ADMIN_DOWN), 0.1)
    assert (s.state, s.diag) == (State.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN)


def test_no_periodic_packets_while_the_peer_wants_none() -> None:
    s = Session(local_discr=1, timers=Timers())
    s.receive(Packet(State.DOWN, Diag.NONE, 3, 99, 0, 300_000, 0), 0.0)
    s.transmit(0.0, 0.0)
    assert s.transmit(10.0, 0.0) is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, None),
        ({"enabled": False}, None),
        ({}, Timers(300, 300, 3)),
        (
            {"minReceiveInterval": 100, "minTransmitInterval": 200, "detectMultiplier": 5},
            Timers(100, 200, 5),
        ),
    ],
)
def test_spec(spec: object, expected: Timers | None) -> None:
    assert bfd_timers(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"minReceiveInterval": 5}, "bfd.minReceiveInterval 5 is outside 10..60000 ms"),
        ({"minTransmitInterval": 70000}, "bfd.minTransmitInterval 70000 is outside"),
        ({"detectMultiplier": 1}, "bfd.detectMultiplier 1 is outside 2..255"),
        ("yes", "bfd must be an object"),
    ],
)
def test_bad_spec_says_why(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bfd_timers(spec)


def _bgppeer(bfd: object) -> dict[str, object]:
    spec = {"myASN": 64512, "peerASN": 64513, "peerAddress": "198.51.100.2", "bfd": bfd}
    return {"metadata": {"name": "r1"}, "spec": spec}


def test_bgppeer_bfd_reaches_the_peer_and_a_bad_one_is_the_peers_problem() -> None:
    assert peer_from(_bgppeer({"detectMultiplier": 4}), {}, "bgp").bfd == Timers(300, 300, 4)
    bad = peer_from(_bgppeer({"minTransmitInterval": 1}), {}, "bgp")
    assert bad.bfd is None
    assert bad.problem == "bfd.minTransmitInterval 1 is outside 10..60000 ms"
