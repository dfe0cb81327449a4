"""A node namespace running our BFD speaker, a router namespace running FRR's bfdd."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from announcer.bfd.speaker import BfdPeer, BfdSpeaker
from exalb.bgppeer import Timers
from testbed.bfd import NODE_V4, NODE_V6, ROUTER_V4, ROUTER_V6, FrrBfdd, Link


@dataclass
class Changes:
    """Every ``on_change`` call with its monotonic time, for asserting on timing."""

    events: list[tuple[float, str, bool | None]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, peer: str, up: bool | None) -> None:
        with self.arrived:
            self.events.append((time.monotonic(), peer, up))
            self.arrived.notify_all()

    def wait(self, peer: str, up: bool, after: float, timeout: float) -> float:
        """The time of the first change of ``peer`` to ``up`` after ``after``."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                hits = [t for t, p, u in self.events if p == peer and u == up and t >= after]
                if hits:
                    return hits[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{peer} did not go {'up' if up else 'down'}: {self.events}")
                self.arrived.wait(left)


@dataclass
class Pair:
    link: Link
    frr: FrrBfdd
    speaker: BfdSpeaker
    changes: Changes


Start = Callable[[Timers], Pair]


@pytest.fixture
def bfd_pair() -> Iterator[Start]:
    """Builds the two namespaces, FRR and our speaker with the given timers on both sides."""
    started: list[Pair] = []

    def start(timers: Timers) -> Pair:
        link = Link()
        link.create()
        frr = FrrBfdd(link, timers.min_rx_ms, timers.min_tx_ms, timers.detect_multiplier)
        changes = Changes()
        speaker = BfdSpeaker(changes, argv_prefix=link.exec_prefix(link.node))
        pair = Pair(link, frr, speaker, changes)
        started.append(pair)
        frr.start()
        speaker.start()
        speaker.configure(
            [
                BfdPeer("r4", ROUTER_V4, NODE_V4, timers),
                BfdPeer("r6", ROUTER_V6, NODE_V6, timers),
            ]
        )
        return pair

    yield start
    for pair in started:
        pair.speaker.stop()
        pair.frr.stop()
        pair.link.delete()
