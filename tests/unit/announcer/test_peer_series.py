"""A peer that no longer selects this node leaves no metric series behind.

A session-up series left at 0 would keep ``ExalbBGPSessionDown`` (and, for a node's
last peer, ``ExalbNoBGPSession``) firing for a session nobody wants any more.
"""

from __future__ import annotations

from prometheus_client import generate_latest

from announcer.bfd.speaker import BfdPeer, BfdSpeaker
from announcer.core.session import (
    Negotiated,
    Notification,
    SessionRecord,
    StateChange,
    observe,
)
from announcer.metrics import Metrics
from exalb.bgppeer import Timers


def _session(m: Metrics, peer: str) -> None:
    """Every per-peer series a session writes, as the speaker's observer writes them."""
    record = SessionRecord()
    events = (Negotiated(90, ()), StateChange("up", None), Notification("sent", 6, 2, "bye"))
    for at, event in enumerate(events):
        record = observe(record, event, float(at))
        m.record_session(peer, record, event)
    m.session_up.labels(peer).set(1)
    m.bfd_session_up.labels(peer).set(1)
    m.announced.labels(peer).set(3)
    m.updates_sent.labels(peer).inc()
    m.ack_latency.labels(peer).observe(0.01)
    m.command_errors.labels(peer).inc()
    m.exabgp_restarts.labels(peer).inc()
    m.negotiated_hold_time.labels(peer).set(90)
    m.peer_problem.labels(peer).set(0)


def _peers_in(m: Metrics) -> dict[str, set[str]]:
    """For each peer, the metric names with a series labelled with it."""
    out: dict[str, set[str]] = {}
    for line in generate_latest(m.registry).decode().splitlines():
        if line.startswith("#") or 'peer="' not in line:
            continue
        peer = line.split('peer="', 1)[1].split('"', 1)[0]
        out.setdefault(peer, set()).add(line.split("{", 1)[0])
    return out


def test_forgetting_a_peer_drops_its_session_series_only() -> None:
    m = Metrics()
    _session(m, "gone")
    _session(m, "kept")
    before = _peers_in(m)
    assert before["gone"] == before["kept"] and len(before["kept"]) >= 13
    m.forget_peer("gone")
    after = _peers_in(m)
    assert after["kept"] == before["kept"]
    # The reports own peer_problem: it covers a peer that still selects but is unusable.
    assert after["gone"] == {"exalb_announcer_peer_problem"}
    _session(m, "gone")  # selecting this node again: every series comes back
    assert _peers_in(m)["gone"] == before["gone"]


def test_a_peer_no_longer_wanted_reports_no_bfd_at_all() -> None:
    changes: list[tuple[str, bool | None]] = []
    speaker = BfdSpeaker(lambda peer, up: changes.append((peer, up)))
    timers = Timers()
    speaker.wanted = {n: BfdPeer(n, "192.0.2.1", None, timers) for n in ("down", "up")}
    speaker.up = {"up": True}
    speaker.configure([])  # no daemon: nothing to write, nothing started
    assert changes == [("down", None), ("up", None)]
    assert not speaker.is_up("up")
