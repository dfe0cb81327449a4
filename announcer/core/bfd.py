"""BFD (RFC 5880) asynchronous mode as data: the control packet and one session's state machine.

No sockets and no clock: the speaker process (``announcer.bfd.daemon``) passes in the
time and the packets it received, sends what the session asks for, and reports state
changes. That keeps every rule of RFC 5880 §6.8 testable with hypothesis, and keeps the
process that must never miss its 300 ms deadlines small.

Supported: asynchronous mode, single hop (RFC 5881), Poll/Final for timer changes.
Not supported: authentication (packets with the A bit are dropped), echo, demand mode
(we never ask for it; a peer that asks for it keeps its packets coming because we keep
ours coming, as §6.6 allows).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from exalb.bgppeer import Timers

VERSION = 1
HEADER = struct.Struct("!BBBBIIIII")  # the 24-byte mandatory section
SLOW_TX_US = 1_000_000  # §6.8.3: while not Up, DesiredMinTxInterval is at least one second


class State(IntEnum):
    ADMIN_DOWN = 0
    DOWN = 1
    INIT = 2
    UP = 3


class Diag(IntEnum):
    NONE = 0
    DETECTION_TIME_EXPIRED = 1
    ECHO_FAILED = 2
    NEIGHBOR_SIGNALED_DOWN = 3
    FORWARDING_PLANE_RESET = 4
    PATH_DOWN = 5
    CONCATENATED_PATH_DOWN = 6
    ADMIN_DOWN = 7
    REVERSE_CONCATENATED_PATH_DOWN = 8


class Malformed(ValueError):
    """A received packet that §6.8.6 says to discard; the message is the reason."""


@dataclass(frozen=True)
class Packet:
    """A BFD control packet without authentication section; intervals in microseconds."""

    state: State
    diag: Diag
    detect_mult: int
    my_discr: int
    your_discr: int
    desired_min_tx_us: int
    required_min_rx_us: int
    required_min_echo_rx_us: int = 0
    poll: bool = False
    final: bool = False
    cpi: bool = False
    demand: bool = False


def encode(p: Packet) -> bytes:
    flags = (
        (p.state << 6)
        | (p.poll << 5)
        | (p.final << 4)
        | (p.cpi << 3)
        | (p.demand << 1)  # A (bit 2) and M (bit 0) stay clear
    )
    return HEADER.pack(
        (VERSION << 5) | p.diag,
        flags,
        p.detect_mult,
        HEADER.size,
        p.my_discr,
        p.your_discr,
        p.desired_min_tx_us,
        p.required_min_rx_us,
        p.required_min_echo_rx_us,
    )


def decode(data: bytes) -> Packet:
    """The packet in ``data``, or :class:`Malformed` with the §6.8.6 check it failed."""
    if len(data) < HEADER.size:
        raise Malformed(f"{len(data)} bytes, shorter than the 24-byte mandatory section")
    vd, flags, mult, length, my, your, tx, rx, echo = HEADER.unpack_from(data)
    if vd >> 5 != VERSION:
        raise Malformed(f"version {vd >> 5}, not {VERSION}")
    if flags & 0x04:
        raise Malformed("authentication present, and none is configured")
    if length < HEADER.size:
        raise Malformed(f"length field {length} is below 24")
    if length > len(data):
        raise Malformed(f"length field {length} exceeds the {len(data)} bytes received")
    if mult == 0:
        raise Malformed("detect multiplier is zero")
    if flags & 0x01:
        raise Malformed("multipoint bit is set")
    if my == 0:
        raise Malformed("my discriminator is zero")
    state = State(flags >> 6)
    if your == 0 and state not in (State.DOWN, State.ADMIN_DOWN):
        raise Malformed(f"your discriminator is zero in state {state.name}")
    diag = vd & 0x1F
    return Packet(
        state=state,
        diag=Diag(diag) if diag in Diag._value2member_map_ else Diag.NONE,
        detect_mult=mult,
        my_discr=my,
        your_discr=your,
        desired_min_tx_us=tx,
        required_min_rx_us=rx,
        required_min_echo_rx_us=echo,
        poll=bool(flags & 0x20),
        final=bool(flags & 0x10),
        cpi=bool(flags & 0x08),
        demand=bool(flags & 0x02),
    )


# The state changes §6.2's diagram allows; everything else is a bug.
TRANSITIONS = frozenset(
    {
        (State.DOWN, State.INIT),
        (State.DOWN, State.UP),
        (State.INIT, State.UP),
        (State.INIT, State.DOWN),
        (State.UP, State.DOWN),
        (State.ADMIN_DOWN, State.DOWN),
        (State.DOWN, State.ADMIN_DOWN),
        (State.INIT, State.ADMIN_DOWN),
        (State.UP, State.ADMIN_DOWN),
    }
)


@dataclass
class Session:
    """One BFD session's variables (§6.8.1) and timers; times are seconds on any clock."""

    local_discr: int
    timers: Timers
    state: State = State.DOWN
    diag: Diag = Diag.NONE
    remote_state: State = State.DOWN
    remote_discr: int = 0
    remote_min_rx_us: int = 1
    remote_desired_tx_us: int = 0
    remote_detect_mult: int = 0
    advertised_tx_us: int = SLOW_TX_US
    polling: bool = False
    final_due: bool = False
    next_tx: float = 0.0
    last_tx: float = float("-inf")
    detect_deadline: float | None = None

    def desired_tx_us(self) -> int:
        configured = self.timers.min_tx_ms * 1000
        return configured if self.state == State.UP else max(configured, SLOW_TX_US)

    def detection_time(self) -> float:
        """§6.8.4, asynchronous mode: the remote's multiplier times the agreed interval."""
        agreed = max(self.timers.min_rx_ms * 1000, self.remote_desired_tx_us)
        return self.remote_detect_mult * agreed / 1e6

    def tx_interval(self) -> float:
        return max(self.advertised_tx_us, self.remote_min_rx_us) / 1e6

    def receive(self, p: Packet, now: float) -> None:
        """§6.8.6 for a packet that passed :func:`decode` and was demultiplexed to us."""
        if self.state == State.ADMIN_DOWN:
            return
        self.remote_discr = p.my_discr
        self.remote_state = p.state
        self.remote_min_rx_us = p.required_min_rx_us
        self.remote_desired_tx_us = p.desired_min_tx_us
        self.remote_detect_mult = p.detect_mult
        # A peer that lowers its RequiredMinRxInterval (its Poll after coming Up) must not
        # wait out the slow interval already scheduled, or its detection time runs out.
        self.next_tx = min(self.next_tx, self.last_tx + 0.75 * self.tx_interval())
        if p.final:
            self.polling = False
        if p.poll:
            self.final_due = True
        self.detect_deadline = now + self.detection_time()
        if p.state == State.ADMIN_DOWN:
            if self.state != State.DOWN:
                self._go(State.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now)
        elif self.state == State.DOWN:
            if p.state == State.DOWN:
                self._go(State.INIT, Diag.NONE, now)
            elif p.state == State.INIT:
                self._go(State.UP, Diag.NONE, now)
        elif self.state == State.INIT:
            if p.state in (State.INIT, State.UP):
                self._go(State.UP, Diag.NONE, now)
        elif p.state == State.DOWN:  # we are Up
            self._go(State.DOWN, Diag.NEIGHBOR_SIGNALED_DOWN, now)

    def expire(self, now: float) -> None:
        """§6.8.4: nothing heard for the detection time."""
        if self.detect_deadline is None or now < self.detect_deadline:
            return
        self.detect_deadline = None
        self.remote_discr = 0
        self.remote_state = State.DOWN
        if self.state in (State.INIT, State.UP):
            self._go(State.DOWN, Diag.DETECTION_TIME_EXPIRED, now)

    def retime(self, timers: Timers, now: float) -> None:
        """A spec change of the timers, told to the peer with a Poll Sequence.

        A lower receive interval takes effect for detection at once; the peer learns it
        from our next packet, which comes no later than one old interval.
        """
        if timers == self.timers:
            return
        self.timers = timers
        self.polling = True
        self._go(self.state, self.diag, now)
        self.next_tx = min(self.next_tx, now)

    def set_admin_down(self, now: float) -> None:
        if self.state != State.ADMIN_DOWN:
            self._go(State.ADMIN_DOWN, Diag.ADMIN_DOWN, now)
            self.detect_deadline = None

    def set_admin_up(self, now: float) -> None:
        if self.state == State.ADMIN_DOWN:
            self._go(State.DOWN, Diag.NONE, now)

    def _go(self, state: State, diag: Diag, now: float) -> None:
        self.state, self.diag = state, diag
        desired = self.desired_tx_us()
        if desired != self.advertised_tx_us:
            # §6.8.3: a changed DesiredMinTxInterval is announced with a Poll Sequence.
            # Sending faster at once is safe (the peer's detection time is based on our
            # slower advertised value until the poll ends), so the new value applies now.
            self.advertised_tx_us = desired
            self.polling = True
            self.next_tx = min(self.next_tx, now)

    def next_event(self) -> float:
        """When :meth:`expire` or :meth:`transmit` next has work to do."""
        if self.final_due:
            return float("-inf")
        deadline = float("inf") if self.detect_deadline is None else self.detect_deadline
        return min(self.next_tx, deadline)

    def transmit(self, now: float, jitter: float) -> Packet | None:
        """The packet to send now, if one is due; ``jitter`` in [0, 1) spreads the period.

        §6.8.7: periodic packets come every 75-100 % of the interval (75-90 % with a
        multiplier of 1), none while the peer's RequiredMinRxInterval is zero; a Final
        answers a Poll at once, outside the schedule.
        """
        periodic = False
        if now >= self.next_tx:
            spread = 0.15 if self.timers.detect_multiplier == 1 else 0.25
            self.next_tx = now + self.tx_interval() * (0.75 + spread * jitter)
            self.last_tx = now
            periodic = not (self.remote_min_rx_us == 0 and self.remote_discr != 0)
        if not (periodic or self.final_due):
            return None
        final = self.final_due
        self.final_due = False
        return Packet(
            state=self.state,
            diag=self.diag,
            detect_mult=self.timers.detect_multiplier,
            my_discr=self.local_discr,
            your_discr=self.remote_discr,
            desired_min_tx_us=self.advertised_tx_us,
            required_min_rx_us=self.timers.min_rx_ms * 1000,
            poll=self.polling and not final,
            final=final,
        )
