"""One BGP session as ExaBGP reports it: state, what was negotiated, NOTIFICATIONs each way.

The announcer keeps this record per peer so that the router's side of the story (the
NOTIFICATION it sent, with its RFC 8203 shutdown communication) outlives the state
changes that follow it: ExaBGP reports "notification received", then "down", then a
reconnect attempt every second, and only the first of these says why. Data in (an
event and the time), a new record out; the speaker owns the clock and the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

UP = "up"
RESTARTED = "closed by this node to apply a changed BGPPeer or password Secret"

CODES = {
    1: "Message Header Error",
    2: "OPEN Message Error",
    3: "UPDATE Message Error",
    4: "Hold Timer Expired",
    5: "Finite State Machine Error",
    6: "Cease",
    7: "ROUTE-REFRESH Message Error",
}
CEASE_SUBCODES = {  # RFC 4486, RFC 9003
    1: "Maximum Number of Prefixes Reached",
    2: "Administrative Shutdown",
    3: "Peer De-configured",
    4: "Administrative Reset",
    5: "Connection Rejected",
    6: "Other Configuration Change",
    7: "Connection Collision Resolution",
    8: "Out of Resources",
    9: "Hard Reset",
    10: "BFD Down",
}


# --- events (``announcer.exabgp.protocol`` parses ExaBGP's lines into these) ---------
@dataclass(frozen=True)
class StateChange:
    state: str  # down | connected | up
    reason: str | None


@dataclass(frozen=True)
class Negotiated:
    """What both OPENs agreed on, reported by ExaBGP before the session is up."""

    hold_time: int
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class Notification:
    direction: str  # received | sent
    code: int
    subcode: int
    communication: str  # the RFC 8203 shutdown communication, else ExaBGP's decoded data


@dataclass(frozen=True)
class EndOfRib:
    """End-of-RIB (RFC 4724) for one family: ``sent``, the router has our whole initial
    table; ``received``, the router has sent us its own (the first UPDATE cycle is over)."""

    direction: str  # received | sent
    family: str


SessionEvent = StateChange | Negotiated | Notification | EndOfRib


# --- the record --------------------------------------------------------------------
@dataclass(frozen=True)
class NotificationSeen:
    code: int
    subcode: int
    communication: str
    at: float  # epoch seconds

    @property
    def name(self) -> str:
        """``Cease/Administrative Shutdown``, as RFC 4271 and RFC 4486 name them."""
        code = CODES.get(self.code, f"code {self.code}")
        sub = CEASE_SUBCODES.get(self.subcode) if self.code == 6 else None
        return f"{code}/{sub}" if sub else f"{code}/{self.subcode}"

    def describe(self) -> str:
        text = f"{self.name} ({self.code}/{self.subcode})"
        return f"{text}: {self.communication!r}" if self.communication else text


@dataclass(frozen=True)
class SessionRecord:
    state: str = "down"
    since: float = 0.0  # when the session last became established, or stopped being
    reason: str = ""  # ExaBGP's reason for the last time it went down
    negotiated: Negotiated | None = None  # of the current session; None unless it is up
    end_of_rib_sent: float | None = None  # of the current session
    end_of_rib_received: float | None = None  # of the current session, from the router
    received: NotificationSeen | None = None  # the router's last NOTIFICATION
    sent: NotificationSeen | None = None  # ours
    ended_by: str | None = None  # received | sent: the NOTIFICATION that ended the last session

    @property
    def up(self) -> bool:
        return self.state == UP


def observe(record: SessionRecord, event: SessionEvent, now: float) -> SessionRecord:
    """``record`` after ``event``, which ExaBGP reported at ``now`` (epoch seconds).

    ``since`` moves only when the session becomes or stops being established: with the
    router gone ExaBGP reports connected/down every second, and "down for how long" is
    the question, not "since the last connection attempt".
    """
    if isinstance(event, StateChange):
        was_up = record.up
        record = replace(record, state=event.state)
        if was_up != record.up:
            ended_by = _ending(record) if was_up else None
            record = replace(record, since=now, ended_by=ended_by)
        if not record.up:
            record = replace(
                record, negotiated=None, end_of_rib_sent=None, end_of_rib_received=None
            )
        if event.state == "down" and event.reason:
            record = replace(record, reason=event.reason)
        return record
    if isinstance(event, Negotiated):
        return replace(record, negotiated=event)
    if isinstance(event, EndOfRib) and event.direction == "received":
        return replace(record, end_of_rib_received=record.end_of_rib_received or now)
    if isinstance(event, EndOfRib):
        return replace(record, end_of_rib_sent=record.end_of_rib_sent or now)
    seen = NotificationSeen(event.code, event.subcode, event.communication, now)
    if event.direction == "received":
        return replace(record, received=seen)
    return replace(record, sent=seen)


def restarted(record: SessionRecord, now: float) -> SessionRecord:
    """The record a peer's next ExaBGP starts from when a config change replaced the last.

    The history (the router's last NOTIFICATION, "down since") is the peer's, not the
    process's; the old session ends with our reason for ending it.
    """
    return observe(record, StateChange("down", RESTARTED), now)


def _ending(record: SessionRecord) -> str | None:
    """Which NOTIFICATION, if any, came during the session that is ending (the latest)."""
    during = [
        (seen.at, direction)
        for direction, seen in (("received", record.received), ("sent", record.sent))
        if seen is not None and seen.at >= record.since
    ]
    return max(during)[1] if during else None
