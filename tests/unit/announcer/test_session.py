"""The session record: ExaBGP's real output, as the routers provoked it, folded into state.

The fixtures are ExaBGP 5.0's API output, recorded against GoBGP and FRR (an
``exabgp`` with this announcer's ``api`` section, the router shutting the neighbor
down with an RFC 8203 message), so the parser is tested on what ExaBGP really writes.
The two UPDATEs it sent (a route, then the End-of-RIB) were recorded decoded; since the
announcer asks for sent messages as packets, those lines hold the same UPDATEs as
ExaBGP's own encoder packs them, in the form its ``send { packets; }`` output takes
(ExaBGP decodes the packet back to exactly the recorded JSON).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from announcer.core.session import (
    RESTARTED,
    EndOfRib,
    Negotiated,
    Notification,
    SessionEvent,
    SessionRecord,
    StateChange,
    observe,
    restarted,
)
from announcer.core.sessionstatus import session_fields
from announcer.exabgp.protocol import parse
from exalb.sessionstatus import node_conditions

FIXTURES = Path(__file__).parent / "fixtures"
MESSAGE = "maintenance by ops ünï"


def _replay(router: str) -> tuple[list[SessionEvent], list[SessionRecord]]:
    events: list[SessionEvent] = []
    records = [SessionRecord(since=0.0)]
    lines = (FIXTURES / f"exabgp-{router}-shutdown.jsonl").read_bytes().splitlines()
    for i, line in enumerate(lines):
        event = parse(line.strip())
        if isinstance(event, StateChange | Negotiated | Notification | EndOfRib):
            events.append(event)
            records.append(observe(records[-1], event, float(i)))
    return events, records


@pytest.mark.parametrize(("router", "hold_time"), [("gobgp", 9), ("frr", 9)])
def test_a_router_side_shutdown_is_recorded_with_its_message(router: str, hold_time: int) -> None:
    events, records = _replay(router)
    up = next(r for r in records if r.up)
    assert up.negotiated == Negotiated(
        hold_time, up.negotiated.capabilities if up.negotiated else ()
    )
    assert up.negotiated is not None
    assert {"ipv4 unicast", "asn4"} <= set(up.negotiated.capabilities)
    assert up.end_of_rib_sent is None  # ExaBGP's End-of-RIB follows the first UPDATE
    assert any(r.up and r.end_of_rib_sent is not None for r in records)

    assert Notification("received", 6, 2, MESSAGE) in events
    last = records[-1]
    assert last.state == "down" and not last.up
    assert last.negotiated is None and last.end_of_rib_sent is None
    assert last.received is not None
    assert last.received.describe() == f"Cease/Administrative Shutdown (6/2): {MESSAGE!r}"
    assert last.sent is None
    # The reconnect attempts that follow keep "down since" at the shutdown.
    went_down = next(i for i, r in enumerate(records) if i and records[i - 1].up and not r.up)
    assert last.since == records[went_down].since
    assert last.reason  # ExaBGP's own words for the last time it went down
    assert last.ended_by == "received"


def test_the_status_entry_and_conditions_carry_the_routers_words() -> None:
    _, records = _replay("frr")
    up_entry = {"name": "tor", **session_fields(next(r for r in records if r.up))}
    assert up_entry["holdTime"] == 9 and "asn4" in up_entry["capabilities"]
    entry = {"name": "tor", **session_fields(records[-1])}
    assert "holdTime" not in entry
    assert entry["lastNotificationReceived"] == {
        "code": 6,
        "subcode": 2,
        "name": "Cease/Administrative Shutdown",
        "communication": MESSAGE,
        "at": entry["lastNotificationReceived"]["at"],
    }
    established, usable = node_conditions([entry], {})
    assert (established.status, established.reason) == ("False", "SessionsDown")
    assert f"router sent Cease/Administrative Shutdown (6/2): {MESSAGE!r}" in established.message
    assert usable.status == "True"
    established, usable = node_conditions([up_entry], {"edge": "passwordSecret missing"})
    assert (established.status, usable.status) == ("True", "False")
    assert usable.message == "edge: passwordSecret missing"


def test_a_notification_we_send_carries_its_raw_communication() -> None:
    # as ``send { packets; }`` hands it over: the NOTIFICATION's header and body
    line = (
        b'{"type": "notification", "neighbor": {"direction": "send", "message": {"category": 3,'
        b' "header": "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF001F03", '
        b'"body": "0x060209616E6E6F756E636572"}}}'
    )
    assert parse(line) == Notification("sent", 6, 2, "announcer")
    hold = b'{"type": "notification", "neighbor": {"direction": "receive", "notification": '
    hold += b'{"code": 4, "subcode": 0, "data": "0x", "message": ""}}}'
    event = parse(hold)
    assert event == Notification("received", 4, 0, "")
    record = observe(SessionRecord(), event, 5.0)
    assert record.received is not None and record.received.describe() == (
        "Hold Timer Expired/0 (4/0)"
    )


STATES = st.sampled_from(["down", "connected", "up"])
EVENTS = st.one_of(
    st.builds(StateChange, STATES, st.none() | st.sampled_from(["refused", "closing"])),
    st.builds(Negotiated, st.integers(0, 65535), st.just(("ipv4 unicast",))),
    st.builds(EndOfRib, st.sampled_from(["received", "sent"]), st.just("ipv4 unicast")),
    st.builds(
        Notification,
        st.sampled_from(["received", "sent"]),
        st.integers(1, 6),
        st.integers(0, 10),
        st.text(max_size=20),
    ),
)


@given(st.lists(EVENTS, max_size=30))
def test_since_moves_only_when_established_changes(events: list[SessionEvent]) -> None:
    record = SessionRecord()
    for t, event in enumerate(events, start=1):
        after = observe(record, event, float(t))
        if after.up != record.up:
            assert after.since == t
            if after.up:
                assert after.ended_by is None
        else:
            assert after.since == record.since
        if isinstance(event, StateChange) and event.state != "up":
            assert after.negotiated is None and after.end_of_rib_sent is None
            assert after.end_of_rib_received is None
        if isinstance(event, EndOfRib):  # the first of each direction is kept
            kept = {"received": record.end_of_rib_received, "sent": record.end_of_rib_sent}
            kept[event.direction] = kept[event.direction] or float(t)
            assert (after.end_of_rib_received, after.end_of_rib_sent) == (
                kept["received"],
                kept["sent"],
            )
        if isinstance(event, Notification):
            seen = after.received if event.direction == "received" else after.sent
            assert seen is not None and seen.communication == event.communication
        record = after


def test_a_restart_keeps_the_peers_history_and_says_why_it_ended() -> None:
    _, records = _replay("frr")
    up = next(r for r in records if r.up)
    after = restarted(up, 100.0)
    assert (after.state, after.since, after.reason) == ("down", 100.0, RESTARTED)
    assert after.negotiated is None and after.ended_by is None
    down = records[-1]
    assert restarted(down, 100.0).since == down.since  # still down since the shutdown
    assert restarted(down, 100.0).received == down.received
