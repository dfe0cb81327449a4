"""The BGPSessionStatus body: one node's sessions, in the API's shape, and its conditions.

Pure, so ``exalbctl`` and the allocator can rely on one spelling of each field: what
the session record holds (``core.session``) becomes camelCase fields with RFC 3339
times; the conditions say in one line each whether every session is established and
whether every peer selecting the node is usable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from exalb.conditions import Condition

from .session import NotificationSeen, SessionRecord

ESTABLISHED = "Established"
PEERS_USABLE = "PeersUsable"

Obj = dict[str, Any]


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notification_status(seen: NotificationSeen | None) -> Obj | None:
    if seen is None:
        return None
    return {
        "code": seen.code,
        "subcode": seen.subcode,
        "name": seen.name,
        "communication": seen.communication,
        "at": timestamp(seen.at),
    }


def session_fields(record: SessionRecord) -> Obj:
    """The record's part of one ``status.peers[]`` entry; absent values are left out."""
    out: Obj = {
        "state": record.state,
        "since": timestamp(record.since),
        "lastError": record.reason,
    }
    if record.negotiated is not None:
        out["holdTime"] = record.negotiated.hold_time
        out["capabilities"] = list(record.negotiated.capabilities)
    if record.end_of_rib_sent is not None:
        out["endOfRibSent"] = timestamp(record.end_of_rib_sent)
    for key, seen in (
        ("lastNotificationReceived", record.received),
        ("lastNotificationSent", record.sent),
    ):
        shown = notification_status(seen)
        if shown is not None:
            out[key] = shown
    return out


def down_summary(peer: str, entry: Mapping[str, Any]) -> str:
    """``tor: down since <time>, router sent Cease/Administrative Shutdown (6/2): 'text'``."""
    text = f"{peer}: {entry.get('state')} since {entry.get('since')}"
    received = entry.get("lastNotificationReceived")
    if received:
        said = f"{received['name']} ({received['code']}/{received['subcode']})"
        if received.get("communication"):
            said += f": {received['communication']!r}"
        text += f", router sent {said}"
    elif entry.get("lastError"):
        text += f" ({entry['lastError']})"
    return text


def node_conditions(
    peers: Sequence[Mapping[str, Any]], unusable: Mapping[str, str]
) -> tuple[Condition, ...]:
    """``peers``: the ``status.peers[]`` entries; ``unusable``: peer -> why it runs no session."""
    down = [down_summary(str(p["name"]), p) for p in peers if p.get("state") != "up"]
    if not peers:
        established = Condition(ESTABLISHED, "Unknown", "NoSessions", "no session runs")
    elif down:
        established = Condition(ESTABLISHED, "False", "SessionsDown", "; ".join(down))
    else:
        established = Condition(
            ESTABLISHED, "True", "AllEstablished", f"all {len(peers)} sessions established"
        )
    if unusable:
        why = "; ".join(f"{name}: {reason}" for name, reason in sorted(unusable.items()))
        usable = Condition(PEERS_USABLE, "False", "PeersUnusable", why)
    else:
        usable = Condition(PEERS_USABLE, "True", "AllUsable", "every selecting peer is usable")
    return established, usable
